"""Real local servers that behave like a node, or misbehave like a broken one.

Each helper is a context manager yielding the base URL (http://127.0.0.1:<free port>);
`requests` on the yielded object lists the paths asked for.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def discovery_answer(**overrides) -> dict:
    """A valid `GET /api/v1/instance/` answer of a public node with both modes."""
    return {
        "uid": str(uuid.uuid4()),
        "platform": "xurrent",
        "version": "1.0.0",
        "url": "https://globex.example",
        "short_name": "globex",
        "public": True,
        "modes": ["basic", "script"],
        "api_version": 1,
        **overrides,
    }


@dataclass
class Server:
    url: str
    requests: list[str] = field(default_factory=list)


@contextmanager
def answering(
    status: int = 200,
    body: bytes | dict | list = b"",
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Iterator[Server]:
    """An HTTP server that gives every GET and POST the same answer."""
    payload = json.dumps(body).encode() if isinstance(body, dict | list) else body
    server_info = Server(url="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            server_info.requests.append(self.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_info.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server_info
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def silent() -> Iterator[Server]:
    """Accepts connections and never answers: a hung node."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    server_info = Server(url=f"http://127.0.0.1:{listener.getsockname()[1]}")
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            server_info.requests.append("(connection)")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server_info
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        listener.close()


@contextmanager
def refusing() -> Iterator[Server]:
    """A port where nothing listens: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield Server(url=f"http://127.0.0.1:{port}")
