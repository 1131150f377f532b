"""Nodes served as in production, for the benchmarks: gunicorn on PostgreSQL databases
made for the run (and dropped after it), a stand-in peer, and what a client measures.

The environment of a node follows tests/livenodes.py (DEBUG off, production settings,
plain http on 127.0.0.1); bench/ keeps its own copy so the test suite and the benchmarks
never depend on each other.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
# The server the bench makes its databases on (BENCH_POSTGRES_URL): a maintenance database
# to connect to; the bench only ever creates and drops databases named exalate_bench_*.
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "exalate_bench_"
SECRET_KEY = "bench-node-secret-key-not-for-production-0123456789abcdefghij"
USERNAME = "admin"
PASSWORD = "bench-admin-pw-123456"
WORKERS = 2
# Production's pages name static files from collectstatic's manifest (hashed names), so the
# served cases collect them here once per run (`collect_static`).
STATIC_ROOT = ROOT / "var" / "bench-static"


_STARTED = time.monotonic()


def progress(message: str) -> None:
    """What the bench is doing, on stderr (the table alone goes to stdout)."""
    print(f"[bench {time.monotonic() - _STARTED:5.1f}s] {message}", file=sys.stderr, flush=True)


# --- PostgreSQL ---------------------------------------------------------------------------


class Postgres:
    """Creates and drops the bench's own databases (all named exalate_bench_*)."""

    def __init__(self, url: str = ""):
        self.url = url or os.environ.get("BENCH_POSTGRES_URL") or DEFAULT_POSTGRES_URL

    @property
    def shown_url(self) -> str:
        """The URL without its password, to print."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))

    def problem(self) -> str:
        """Why the bench cannot use this server ("" when it can)."""
        try:
            import psycopg
        except ImportError:
            return "psycopg is not installed (make install)."
        try:
            with psycopg.connect(self.url, connect_timeout=3, autocommit=True) as connection:
                connection.execute("SELECT 1")
                allowed = connection.execute(
                    "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
                ).fetchone()
        except Exception as error:  # any failure to connect is the reason, shown as is
            text = str(error).strip()
            why = text.splitlines()[0] if text else type(error).__name__
            return f"PostgreSQL not reachable at {self.shown_url}: {why}."
        if not (allowed and allowed[0]):
            return f"The role of {self.shown_url} may not create databases."
        return ""

    def database_url(self, name: str) -> str:
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{_checked(name)}"))

    def _execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=5, autocommit=True) as connection:
            connection.execute(sql)

    def create(self, name: str, *, template: str = "") -> str:
        """A new, empty database (or a copy of `template`); returns its URL."""
        self.drop(name)
        copy = f" TEMPLATE {_checked(template)}" if template else ""
        self._execute(f"CREATE DATABASE {_checked(name)}{copy}")
        return self.database_url(name)

    def drop(self, name: str) -> None:
        self._execute(f"DROP DATABASE IF EXISTS {_checked(name)} WITH (FORCE)")

    def drop_leftovers(self) -> None:
        """Drop the databases of earlier runs that were killed before they cleaned up
        (their process is gone); those of a run still going are left alone."""
        import psycopg

        with psycopg.connect(self.url, connect_timeout=5, autocommit=True) as connection:
            names = [
                row[0]
                for row in connection.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s",
                    [DB_PREFIX.replace("_", r"\_") + "%"],
                )
            ]
        for name in names:
            run = re.fullmatch(rf"{DB_PREFIX}(\d+)_[a-z0-9_]+", name)
            if run and not Path(f"/proc/{run.group(1)}").exists():
                self.drop(name)


def database_name(name: str) -> str:
    """This run's database called `name`: runs side by side never touch each other's."""
    return _checked(f"{DB_PREFIX}{os.getpid()}_{name}")


def _checked(name: str) -> str:
    """Only names the bench made itself are ever created or dropped."""
    if not re.fullmatch(rf"{DB_PREFIX}[a-z0-9_]+", name):
        raise ValueError(f"Not a bench database name: {name!r}")
    return name


# --- gunicorn -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_env(database_url: str, *, url: str = "http://127.0.0.1:8000", **extra: str) -> dict:
    """A node's environment: production settings on plain http, its own database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "exalate_site.settings",
        "DEBUG": "0",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "EXALATE_NODE_URL": url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CSRF_TRUSTED_ORIGINS": url,
        "EXALATE_ALLOW_PRIVATE_NETWORKS": "true",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "0",
        # The bench posts hundreds of accepts from one address on purpose.
        "EXALATE_ACCEPT_RATE": "1000000/min",
        "LOG_LEVEL": "WARNING",
        "STATIC_ROOT": str(STATIC_ROOT),
        **extra,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def collect_static(env: dict) -> None:
    """Gather the static files the nodes serve, as `make serve` does before starting."""
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"collectstatic failed:\n{result.stderr[-4000:]}")


def run_task(env: dict, *args: str, timeout: float = 300) -> str:
    """`python -m bench.tasks ARGS` in a node's Django; returns what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.tasks", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.tasks {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result.stdout


@dataclass
class Server:
    """One gunicorn master (2 sync workers) and the log it writes."""

    name: str
    url: str
    process: subprocess.Popen
    log_path: Path
    ready_path: str

    def wait_ready(self, timeout: float = 60) -> Server:
        """Until both workers have booted and the server answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server {self.name} exited:\n{self._log_tail()}")
            try:
                answered = httpx.get(f"{self.url}{self.ready_path}", timeout=2).status_code
            except httpx.HTTPError:
                answered = 0
            if answered == 200 and len(self.worker_pids()) == WORKERS:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"server {self.name} did not start:\n{self._log_tail()}")

    def worker_pids(self) -> list[int]:
        """The master's children: its workers."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces and parentheses: read after the last ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                pids.append(int(entry.name))
        return pids

    def worker_rss(self) -> list[int]:
        """Resident memory of each worker, in bytes (VmRSS of /proc/<pid>/status)."""
        sizes = []
        for pid in self.worker_pids():
            status = Path(f"/proc/{pid}/status").read_text()
            kb = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
            if kb:
                sizes.append(int(kb.group(1)) * 1024)
        return sizes

    def worker_shares(self) -> list[tuple[int, int]]:
        """(USS, PSS) of each worker, in bytes, from /proc/<pid>/smaps_rollup: its private
        pages (what one more worker adds), and those plus its share of the pages it maps
        with other processes (a library's code is in memory once, whoever maps it)."""
        sizes = []
        for pid in self.worker_pids():
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            kb = dict(re.findall(r"^(\w+):\s+(\d+) kB", rollup, re.MULTILINE))
            private = int(kb.get("Private_Clean", 0)) + int(kb.get("Private_Dirty", 0))
            sizes.append((private * 1024, int(kb.get("Pss", 0)) * 1024))
        return sizes

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # gunicorn: graceful shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"


def launch(
    name: str,
    database_url: str,
    *,
    logdir: Path,
    app: str = "exalate_site.wsgi",
    ready_path: str = "/healthz",
    **extra_env: str,
) -> Server:
    """Start gunicorn as `make serve` does (gunicorn.conf.py), with 2 sync workers.

    Returns at once; call `wait_ready()` (several servers boot side by side meanwhile).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = logdir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(GUNICORN),
                "--config",
                str(ROOT / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(WORKERS),
                # One thread per worker: gunicorn's plain sync worker.
                "--threads",
                "1",
                app,
            ],
            cwd=ROOT,
            env=node_env(database_url, url=url, **extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Server(name=name, url=url, process=process, log_path=log_path, ready_path=ready_path)


# --- clients --------------------------------------------------------------------------------


def logged_in_client(server: Server) -> httpx.Client:
    """A client with an admin's session, as a person using the pages has."""
    client = httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)
    client.get("/accounts/login/")
    answer = client.post(
        "/accounts/login/",
        data={
            "username": USERNAME,
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
        headers={"Referer": f"{server.url}/accounts/login/"},
    )
    if answer.status_code != 302:
        raise RuntimeError(f"login on {server.name} failed: HTTP {answer.status_code}")
    return client


def get_ok(client: httpx.Client, path: str) -> httpx.Response:
    answer = client.get(path)
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path}: HTTP {answer.status_code} {answer.text[:300]}")
    return answer


def median_pair(
    a: httpx.Client, path_a: str, b: httpx.Client, path_b: str, *, count: int, warmup: int = 5
) -> tuple[float, float, int, int]:
    """GET from two servers in turn: the median seconds of each, and the size of each
    answer. Taking turns puts both through the same moments of a busy machine."""
    for _ in range(warmup):
        get_ok(a, path_a)
        get_ok(b, path_b)
    times: dict[int, list[float]] = {0: [], 1: []}
    sizes = {0: 0, 1: 0}
    for _ in range(count):
        for side, (client, path) in enumerate(((a, path_a), (b, path_b))):
            started = time.perf_counter()
            answer = get_ok(client, path)
            times[side].append(time.perf_counter() - started)
            sizes[side] = len(answer.content)
    return statistics.median(times[0]), statistics.median(times[1]), sizes[0], sizes[1]


def post_all(server: Server, path: str, bodies: list[dict], *, threads: int) -> float:
    """POST each body once, from `threads` clients at once; the seconds it took.
    Every answer must be a success, or the figure would time errors."""
    lock = threading.Lock()
    queue = iter(bodies)

    def post_some() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while True:
                with lock:
                    body = next(queue, None)
                if body is None:
                    return
                answer = client.post(path, json=body)
                if answer.status_code not in (200, 201):
                    raise RuntimeError(
                        f"POST {path}: HTTP {answer.status_code} {answer.text[:300]}"
                    )

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(post_some) for _ in range(threads)]:
            future.result()
    return time.perf_counter() - started


def get_many(client_for, paths: Iterable[str], *, threads: int) -> int:
    """GET every path (each thread with its own client from `client_for()`); how many."""
    lock = threading.Lock()
    queue = iter(paths)
    done = [0]

    def get_all() -> None:
        with client_for() as client:
            while True:
                with lock:
                    path = next(queue, None)
                if path is None:
                    return
                get_ok(client, path)
                with lock:
                    done[0] += 1

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(get_all) for _ in range(threads)]:
            future.result()
    return done[0]


# --- a stand-in peer ------------------------------------------------------------------------


class _PeerHandler(BaseHTTPRequestHandler):
    """Answers `POST /api/v1/connections/<id>/status/` at once, as a node that took it in."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real node behind a proxy offers
    # Headers and body go out as two writes: with Nagle's algorithm on, the body would
    # wait for the client's delayed ACK (about 40 ms a call on Linux).
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        connection_id = self.path.rstrip("/").split("/")[-2]
        body = json.dumps(
            {"id": connection_id, "name": "Bench peer", "mode": "script", "status": "active"}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's signature
        pass


class Peer:
    """A peer node's status endpoint on 127.0.0.1, served from a thread of this process."""

    def __enter__(self) -> Peer:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _PeerHandler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
