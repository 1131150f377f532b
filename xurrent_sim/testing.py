"""Start a simulator for tests.

    with running_simulator() as sim:
        httpx.get(sim.url + "/requests", headers=sim.headers)

The simulator runs as a subprocess (`python -m xurrent_sim --port 0 ...`); its output
goes to a log file (`sim.log_path`), from which the helper reads the bound port. Only
tests import this module; the product never does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the directory that holds xurrent_sim/
LISTENING = re.compile(r"listening on (http://\S+)/v1")


@dataclass
class RunningSimulator:
    base: str  # http://127.0.0.1:PORT
    account: str
    token: str
    process: subprocess.Popen
    log_path: Path
    args: list[str] = field(default_factory=list)
    owns_log: bool = False  # the log is a temporary file made by start_simulator

    @property
    def url(self) -> str:
        """The API's base URL, as a client is configured with it."""
        return f"{self.base}/v1"

    @property
    def page_url(self) -> str:
        return f"{self.base}/"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Xurrent-Account": self.account}

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    # ---- /_sim/ control endpoints

    def control(self, method: str, name: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - a local test server
            f"{self.base}/_sim/{name}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"/_sim/{name}: {error.code} {error.read()!r}") from None

    def fault(self, kind: str, **spec: Any) -> list[dict]:
        """Schedule one fault, e.g. `sim.fault("error", status=503, count=2, store=True)`."""
        return self.control("POST", "faults", {"kind": kind, **spec})

    def faults(self) -> list[dict]:
        return self.control("GET", "faults")

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def reset(self) -> None:
        self.control("POST", "reset", {})

    def stats(self) -> dict:
        return self.control("GET", "stats")

    def writes(self, method: str | None = None) -> int:
        """API writes stored so far (all methods, or one: "POST", "PATCH")."""
        writes = self.stats()["writes"]
        return writes.get(method, 0) if method else sum(writes.values())

    def webhooks(self) -> dict:
        return self.control("GET", "webhooks")

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        return self.control("POST", "webhooks/wait", {"timeout": timeout})["idle"]

    def clock(self, **move: Any) -> dict:
        """`sim.clock(advance=3600)`, `sim.clock(offset=0)`, `sim.clock(now="2026-01-01")`."""
        return self.control("POST", "clock", move) if move else self.control("GET", "clock")

    # ---- life

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.owns_log:
            self.log_path.unlink(missing_ok=True)


def start_simulator(
    account: str = "widget-test",
    token: str = "sim-token-0123456789",  # noqa: S107 - a test server's token
    webhooks: list[str] = (),
    data: Path | str | None = None,
    rate_limit: int | None = None,
    webhook_key: Path | str | None = None,
    port: int = 0,
    extra_args: list[str] = (),
    log_path: Path | str | None = None,
    timeout: float = 20.0,
) -> RunningSimulator:
    """Start `python -m xurrent_sim` and wait until it answers; call `.stop()` when done."""
    args = ["--port", str(port), "--account", account, "--token", token]
    for url in webhooks:
        args += ["--webhook", url]
    if data is not None:
        args += ["--data", str(data)]
    if rate_limit is not None:
        args += ["--rate-limit", str(rate_limit)]
    if webhook_key is not None:
        args += ["--webhook-key", str(webhook_key)]
    args += list(extra_args)
    owns_log = log_path is None
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="xurrent_sim-", suffix=".log")
        os.close(handle)
        log_path = name
    log_path = Path(log_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "xurrent_sim", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = LISTENING.search(log_path.read_text(encoding="utf-8", errors="replace"))
        if found:
            sim = RunningSimulator(
                found.group(1), account, token, process, log_path, args, owns_log
            )
            if _answers(sim):
                return sim
        if process.poll() is not None:
            raise RuntimeError(
                f"xurrent_sim exited ({process.returncode}):\n{log_path.read_text()}"
            )
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"xurrent_sim did not answer within {timeout} s:\n{log_path.read_text()}")


def _answers(sim: RunningSimulator) -> bool:
    try:
        sim.control("GET", "stats")
    except (OSError, AssertionError):
        return False
    return True


@contextmanager
def running_simulator(**options: Any) -> Iterator[RunningSimulator]:
    """`start_simulator(**options)`, stopped when the block ends."""
    sim = start_simulator(**options)
    try:
        yield sim
    finally:
        sim.stop()
