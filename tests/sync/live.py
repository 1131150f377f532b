"""Live sync for tests: per side a real node (gunicorn), its own Xurrent simulator (whose
webhooks reach the node) and its worker (`run_worker`), all over real HTTP.

    a, b = start_side(tmp, "a"), start_side(tmp, "b")
    connect(a, b)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.livenodes import ROOT, LiveNode, free_port, initiate_between, start_node
from tests.sync.engine import INCOMING, OUTGOING
from xurrent_sim.testing import RunningSimulator, start_simulator

POLL_SECONDS = "2"


@dataclass
class LiveSide:
    name: str
    node: LiveNode
    sim: RunningSimulator
    worker: subprocess.Popen | None = None
    connection_id: str = ""

    # --- the worker -------------------------------------------------------------------

    @property
    def worker_log(self) -> Path:
        return self.node.workdir / f"{self.name}-sync-worker.log"

    def start_worker(self) -> None:
        if getattr(self.node, "worker_process", None) is not None:
            return  # the node's own helper runs one already
        with self.worker_log.open("ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-u", "manage.py", "run_worker", "--idle", "0.2"],
                cwd=ROOT,
                env=self.node.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        self.worker = None

    def down(self) -> None:
        """The node and its worker stop (its Xurrent stays up)."""
        self.stop_worker()
        self.node.stop()

    def up(self) -> None:
        self.node.start()
        self.start_worker()

    def stop(self) -> None:
        self.down()
        self.sim.stop()

    # --- Django on this node ---------------------------------------------------------

    def shell(self, code: str) -> str:
        return self.node.shell(code)

    def status(self) -> dict:
        out = self.node.manage("sync_status", self.connection_id, "--json").stdout
        return json.loads(out)

    # --- a person using this side's Xurrent --------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> Any:
        answer = httpx.request(
            method, f"{self.sim.url}{path}", json=body, headers=self.sim.headers, timeout=20
        )
        assert answer.status_code < 300, answer.text
        return answer.json()

    def create(self, subject: str, **fields) -> dict:
        body = {"subject": subject, "category": "incident", "impact": "low", "team_id": 1}
        return self.api("POST", "/requests", {**body, **fields})

    def update(self, request_id: int, **fields) -> dict:
        return self.api("PATCH", f"/requests/{request_id}", fields)

    def add_note(self, request_id: int, text: str, internal: bool = False) -> dict:
        return self.api(
            "POST", f"/requests/{request_id}/notes", {"text": text, "internal": internal}
        )

    def requests(self) -> list[dict]:
        return self.api("GET", "/requests?sort=id&per_page=100")

    def texts(self, request_id: int) -> list[str]:
        notes = self.api("GET", f"/requests/{request_id}/notes?sort=id")
        return [n["text"] for n in notes]

    def copy_of(self, twin_id: str) -> dict | None:
        found = self.api("GET", f"/requests?sourceID={twin_id}")
        return found[0] if found else None


def start_side(
    workdir: Path,
    name: str,
    *,
    calls_per_hour: int = 36_000,
    burst: int = 20,
    webhooks: bool = True,
    poll_seconds: str = POLL_SECONDS,
    **env: str,
) -> LiveSide:
    """A node, its simulator and its worker. The account allows `calls_per_hour` (ten a
    second by default: a real account's 3,600 an hour would make the tests slow) with
    Xurrent's burst limit; the node's engine keeps to the same budget. Without
    `webhooks` the node learns of changes by polling only."""
    port = free_port()
    webhook = f"http://127.0.0.1:{port}/api/v1/xurrent/webhook/"
    workdir.mkdir(parents=True, exist_ok=True)
    sim = start_simulator(
        account=f"account-{name}",
        webhooks=[webhook] if webhooks else [],
        rate_limit=calls_per_hour,
        log_path=workdir / f"{name}-sim.log",
        extra_args=["--quiet"],
    )
    try:
        node = start_node(
            workdir / name,
            name,
            port=port,
            XURRENT_API_URL=sim.url,
            XURRENT_ACCOUNT=sim.account,
            XURRENT_API_TOKEN=sim.token,
            XURRENT_POLL_SECONDS=poll_seconds,
            XURRENT_HOURLY_BUDGET=str(calls_per_hour),
            XURRENT_BURST=str(burst),
            **env,
        )
    except BaseException:
        sim.stop()
        raise
    side = LiveSide(name, node, sim)
    side.start_worker()
    return side


def connect(
    a: LiveSide,
    b: LiveSide,
    *,
    query: str = "category=incident",
    rules: tuple[str, str] | None = (OUTGOING, INCOMING),
    without_url: bool = False,
) -> None:
    """The real handshake (initiated on A, accepted on B), the sync rules and a trigger on
    both sides. `rules` are (outgoing, incoming); None leaves the default rules a new
    connection has, unchanged. `without_url`: A is not given B's URL (B is in a private
    network)."""
    a.connection_id, code = initiate_between(
        a.node, b.node, f"{a.name} to {b.name}", without_url=without_url
    )
    accepted = b.node.manage("accept_invitation", code).stdout.strip().splitlines()[-1]
    b.connection_id, status = accepted.split()
    assert status == "active"
    wait_for(lambda: _status(a) == "active", "A sees the connection active")
    for side in (a, b):
        if rules is not None:
            side.shell(
                "from connections.models import Connection\n"
                "from sync.services import save_rules\n"
                f"save_rules(Connection.objects.get(pk={side.connection_id!r}), "
                f"{rules[0]!r}, {rules[1]!r})"
            )
        side.node.manage("add_trigger", side.connection_id, query)


def _status(side: LiveSide) -> str:
    out = side.shell(
        "from connections.models import Connection\n"
        f"print(Connection.objects.get(pk={side.connection_id!r}).status)"
    )
    return out.splitlines()[-1]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out waiting for: {what}")
        time.sleep(0.5)


def quiet(sides: list[LiveSide], *, for_seconds: float = 8.0, timeout: float = 60.0) -> dict:
    """Wait until no simulator has seen a write for `for_seconds` (several polls and
    worker rounds); returns the write counts then."""
    deadline = time.monotonic() + timeout
    last = {s.name: s.sim.writes() for s in sides}
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(1)
        now = {s.name: s.sim.writes() for s in sides}
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= for_seconds:
            return now
    raise AssertionError(f"Xurrent writes did not stop: {last}")
