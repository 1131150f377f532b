"""Live nodes for tests: real server processes on 127.0.0.1, each with its own database.

`start_node()` migrates a fresh SQLite file, seeds General Settings, creates a login and
serves the project with gunicorn until `stop()`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
PASSWORD = "node-admin-pw-123456"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveNode:
    name: str
    url: str
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen | None = None
    username: str = "admin"
    password: str = PASSWORD
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.name}.log"

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a management command against this node's database."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result

    def shell(self, code: str) -> str:
        """Run Python in this node's Django and return what it printed."""
        return self.manage("shell", "-c", code).stdout.strip()

    def start(self) -> LiveNode:
        port = self.url.rsplit(":", 1)[1]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(GUNICORN),
                "exalate_site.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--timeout",
                "60",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"node {self.name} exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"node {self.name} did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def start_node(workdir: Path, name: str, *, port: int | None = None, **extra_env: str) -> LiveNode:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": f"live-node-{name}-secret-key-0123456789abcdefghijklmnop",
        "DATABASE_URL": f"sqlite:///{workdir / f'{name}.sqlite3'}",
        "EXALATE_NODE_URL": url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CSRF_TRUSTED_ORIGINS": url,
        "EXALATE_ALLOW_PRIVATE_NETWORKS": "true",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    # Test-process-only switches must not leak into a node that plays production.
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    node = LiveNode(name=name, url=url, env=env, workdir=workdir)
    node.manage("migrate", "--noinput")
    node.manage("setup_node")
    node.shell(
        "from django.contrib.auth import get_user_model as g; "
        f"u = g().objects.get(username='admin'); u.set_password('{PASSWORD}'); u.save()"
    )
    return node.start()


def logged_in_client(node: LiveNode) -> httpx.Client:
    """An HTTP client with a session on `node`, as an admin using the pages would have."""
    client = httpx.Client(base_url=node.url, timeout=20, follow_redirects=False)
    client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        data={
            "username": node.username,
            "password": node.password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
        headers={"Referer": f"{node.url}/accounts/login/"},
    )
    assert response.status_code == 302, response.text
    return client


def post_form(client: httpx.Client, path: str, data: dict) -> httpx.Response:
    """POST a page form with the CSRF token the browser would send."""
    return client.post(
        path,
        data={**data, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        headers={"Referer": f"{client.base_url}{path}"},
    )


def initiate_between(
    source: LiveNode, destination: LiveNode, name: str, *, description: str = ""
) -> tuple[str, str]:
    """A pending connection on `source` towards `destination`: (its id, the code)."""
    uid = httpx.get(f"{destination.url}/api/v1/instance/").json()["uid"]
    out = source.shell(
        "from invitations.services.issuing import initiate_connection as go\n"
        f"c, _, code = go(name={name!r}, mode='script', local_short_name='desk-a', "
        f"remote_short_name='desk-b', description={description!r}, "
        f"remote_url={destination.url!r}, remote_uid={uid!r})\n"
        "print(c.id)\nprint(code)"
    )
    connection_id, code = out.splitlines()[-2:]
    return connection_id, code
