"""A small local HTTP server that records the webhooks it receives."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Receiver:
    url: str = ""
    calls: list[dict] = field(default_factory=list)  # {"body", "headers", "status", "at", "done"}
    fail_next: int = 0  # answer 500 to this many calls first
    delay: float = 0.0  # seconds to wait before answering
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict]:
        """The bodies that were accepted (answered 2xx)."""
        with self.lock:
            return [c["body"] for c in self.calls if c["status"] == 200 and "done" in c]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            bodies = self.bodies()
            if len(bodies) >= count:
                return bodies
            time.sleep(0.02)
        raise AssertionError(f"expected {count} webhooks, got {self.bodies()}")

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()
            self.fail_next = 0
            self.delay = 0.0


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                status = 500 if receiver.fail_next > 0 else 200
                receiver.fail_next = max(receiver.fail_next - 1, 0)
                call = {
                    "body": json.loads(raw),
                    "headers": dict(self.headers),
                    "status": status,
                    "at": time.monotonic(),
                }
                receiver.calls.append(call)
            time.sleep(receiver.delay)
            call["done"] = time.monotonic()  # just before the answer goes out
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
