"""Two real workers (`run_worker` processes) share one PostgreSQL queue: every event is
sent once, and the events of a twin go out in their order."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings

from sync.models import EventState, SyncEvent, Twin, TwinOrigin
from tests.connections.peers import make_paired
from tests.livenodes import ROOT

TWINS = 50
EVENTS_PER_TWIN = 10


class RecordingPeer(ThreadingHTTPServer):
    """The other node: stores every event it is sent and answers that it applied it."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.received: list[tuple[str, str, int]] = []  # (event, twin_id, seq) in order
        self.senders: list[int] = []  # the pid of the worker that sent each event
        self.worker_pids: list[int] = []

    def sender_of(self, port: int) -> int | None:
        """The worker process whose socket has this local port (Linux /proc)."""
        inode = None
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as rows:
                for row in list(rows)[1:]:
                    fields = row.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inode = fields[9]
        if inode is None:
            return None
        for pid in self.worker_pids:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return pid
        return None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        peer: RecordingPeer = self.server
        sender = peer.sender_of(self.client_address[1])
        # One event, or a batch of them (README: batches), each recorded in its order.
        events = body.get("events", [body])
        with peer.lock:
            for event in events:
                peer.received.append((event["event"], event["twin_id"], event["seq"]))
                peer.senders.append(sender)
        time.sleep(0.005)  # a little work, so the two workers overlap
        results = [
            {"event": e["event"], "state": "applied", "request_id": str(e["seq"])} for e in events
        ]
        if "events" in body:
            answer = json.dumps({"results": [{"status": 202, **r} for r in results]}).encode()
        else:
            answer = json.dumps(results[0]).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_send_500_queued_events_each_once_and_each_twin_in_order(node, tmp_path):
    peer = RecordingPeer()
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    connection = make_paired(remote_url=peer.url)
    for n in range(TWINS):
        twin = Twin.objects.create(
            connection=connection, origin=TwinOrigin.LOCAL, local_request_id=n + 1
        )
        SyncEvent.objects.bulk_create(
            SyncEvent(connection=connection, twin=twin, seq=seq, replica={"n": n, "seq": seq})
            for seq in range(1, EVENTS_PER_TWIN + 1)
        )
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}},
        "DATABASE_URL": database_url(),
        "EXALATE_ALLOW_PRIVATE_NETWORKS": "true",
        "LOG_LEVEL": "WARNING",
    }
    workers = []
    for number in range(2):
        log = (tmp_path / f"worker-{number}.log").open("wb")
        workers.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "run_worker", "--idle", "0.2", "--batch-size", "7"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    peer.worker_pids = [w.pid for w in workers]
    try:
        deadline = time.monotonic() + 180
        while SyncEvent.objects.exclude(state=EventState.APPLIED).exists():
            assert time.monotonic() < deadline, "the workers did not send everything in time"
            assert all(w.poll() is None for w in workers), [
                (tmp_path / f"worker-{n}.log").read_text() for n in range(2)
            ]
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=20)
        peer.shutdown()

    total = TWINS * EVENTS_PER_TWIN
    counts = Counter(event for event, _, _ in peer.received)
    assert len(counts) == total
    assert set(counts.values()) == {1}  # each event sent once
    order = defaultdict(list)
    for _, twin_id, seq in peer.received:
        order[twin_id].append(seq)
    assert all(seqs == list(range(1, EVENTS_PER_TWIN + 1)) for seqs in order.values())
    assert SyncEvent.objects.filter(state=EventState.APPLIED).count() == total
    # Both workers took their share of the queue (a socket the peer could not trace back
    # in /proc, as it closed, counts for neither).
    shares = Counter(peer.senders)
    assert all(shares[pid] >= 10 for pid in peer.worker_pids), shares
