"""Live nodes for tests: real server processes on 127.0.0.1, each with its own database.

`start_node()` migrates a fresh SQLite file, seeds General Settings, creates a login and
serves the project with gunicorn until `stop()`, with `run_worker` beside it (as `make
serve` runs them): pages only queue what the peer must hear, and the worker tells it.
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
    # The background worker (`run_worker`) that delivers what peers must be told.
    worker: bool = True
    worker_process: subprocess.Popen | None = None
    username: str = "admin"
    password: str = PASSWORD
    log_path: Path = field(init=False)
    worker_log_path: Path = field(init=False)
    _worker_log_from: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.name}.log"
        self.worker_log_path = self.workdir / f"{self.name}-worker.log"

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

    def start(self, *, worker: bool | None = None) -> LiveNode:
        """Serve again; `worker` (default: the node's `worker`) starts its worker too."""
        worker = self.worker if worker is None else worker
        try:
            if worker:
                self.start_worker(wait=False)
            self._serve()
            if worker:
                self._wait_for_worker()
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self) -> None:
        port = self.url.rsplit(":", 1)[1]
        with self.log_path.open("ab") as log:
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
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"node {self.name} did not start:\n{self.log_path.read_text()}")

    def _wait_for_worker(self) -> None:
        """Return once the worker says it runs (it polls the queue from then on)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.worker_process.poll() is not None:
                raise AssertionError(
                    f"the worker of node {self.name} exited:\n{self.worker_log_path.read_text()}"
                )
            with self.worker_log_path.open("rb") as log:
                log.seek(self._worker_log_from)
                if b"Worker started" in log.read():
                    return
            time.sleep(0.1)
        raise AssertionError(
            f"the worker of node {self.name} did not start:\n{self.worker_log_path.read_text()}"
        )

    def start_worker(self, *, wait: bool = True) -> None:
        """Start `run_worker` against this node's database (its output in the worker log);
        `wait`: return once it runs."""
        with self.worker_log_path.open("ab") as log:
            self._worker_log_from = log.tell()  # an earlier run's lines stay above
            self.worker_process = subprocess.Popen(
                [sys.executable, "-u", "manage.py", "run_worker"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self._wait_for_worker()

    def stop(self) -> None:
        _end(self.process)
        self.process = None
        self.stop_worker()

    def stop_worker(self) -> None:
        _end(self.worker_process)
        self.worker_process = None


def _end(process: subprocess.Popen | None) -> None:
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_node(
    workdir: Path, name: str, *, port: int | None = None, worker: bool = True, **extra_env: str
) -> LiveNode:
    """A live node; `worker=False` leaves out its `run_worker` (nothing then tells peers
    what its pages queued, until a test runs `deliver_notifications`)."""
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
    node = LiveNode(name=name, url=url, env=env, workdir=workdir, worker=worker)
    node.manage("migrate", "--noinput")
    node.manage("setup_node")
    node.shell(
        "from django.contrib.auth import get_user_model as g; "
        f"u = g().objects.get(username='admin'); u.set_password('{PASSWORD}'); u.save()"
    )
    collect_static_files(node)
    return node.start()


def start_servers(
    workdir: Path, name: str, *, servers: int = 2, worker: bool = True, **extra_env: str
) -> list[LiveNode]:
    """One node served by several app servers, as behind a load balancer: gunicorn processes
    on ports of their own, each with its worker beside it, over one database and cache (pass
    a PostgreSQL DATABASE_URL and a Redis CACHE_URL), with one SECRET_KEY. The first is set
    up and started as `start_node` does; the node's own URL (EXALATE_NODE_URL) is the
    first's."""
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(servers)]
    first = start_node(
        workdir,
        name,
        port=int(urls[0].rsplit(":", 1)[1]),
        worker=worker,
        CSRF_TRUSTED_ORIGINS=",".join(urls),
        **extra_env,
    )
    started = [first]
    try:
        for number, url in enumerate(urls[1:], start=2):
            server = LiveNode(
                name=f"{name}-{number}", url=url, env=first.env, workdir=workdir, worker=worker
            )
            started.append(server.start())
    except BaseException:
        for server in started:
            server.stop()
        raise
    return started


def collect_static_files(node: LiveNode) -> None:
    """A node plays production, whose pages name only collected files (hashed names, from
    collectstatic's manifest): collect them unless the run already did (tests/conftest.py)."""
    root = Path(node.env.get("STATIC_ROOT") or ROOT / "var" / "static")
    if not (root / "staticfiles.json").is_file():
        node.manage("collectstatic", "--noinput", "-v", "0")


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
    source: LiveNode,
    destination: LiveNode,
    name: str,
    *,
    description: str = "",
    without_url: bool = False,
) -> tuple[str, str]:
    """A pending connection on `source` towards `destination`: (its id, the code).
    `without_url`: as the wizard's "I don't have a URL" (a destination in a private
    network, which nobody can call)."""
    if without_url:
        url, uid = "", None
    else:
        url = destination.url
        uid = httpx.get(f"{destination.url}/api/v1/instance/").json()["uid"]
    out = source.shell(
        "from invitations.services.issuing import initiate_connection as go\n"
        f"c, _, code = go(name={name!r}, mode='script', local_short_name='desk-a', "
        f"remote_short_name='desk-b', description={description!r}, "
        f"remote_url={url!r}, remote_uid={uid!r})\n"
        "print(c.id)\nprint(code)"
    )
    connection_id, code = out.splitlines()[-2:]
    return connection_id, code


def eventually(check, *, timeout: float = 10.0, every: float = 0.1):
    """The first truthy answer of `check()` within `timeout` seconds: a node's worker tells
    the peer moments after the page answered. Fails with the last answer otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            break
        time.sleep(every)
    assert answer, f"still {answer!r} after {timeout} s"
    return answer
