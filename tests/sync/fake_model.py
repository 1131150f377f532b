"""A fake OpenAI-compatible chat completions API over real HTTP, for AI Assist's tests.

`FakeModel` serves POST /v1/chat/completions on 127.0.0.1 from a queue of prepared answers
(`answer`, `fail`, `slow`) and keeps every request it got (headers and JSON body), so a
test can check what the node sent. An empty queue answers 500.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []

    @property
    def text(self) -> str:
        """Everything the messages say, in one string."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


def completion(content: str) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


def draft(**scripts: str) -> str:
    """A model answer in the shape the prompt asks for."""
    return json.dumps({**scripts, "explanation": "Drafted by the fake model."})


@dataclass
class FakeModel:
    replies: deque = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def answer(self, content: str) -> FakeModel:
        self.replies.append(Reply(200, completion(content)))
        return self

    def fail(self, status: int, message: str = "error") -> FakeModel:
        self.replies.append(Reply(status, {"error": {"message": message}}))
        return self

    def slow(self, seconds: float, content: str) -> FakeModel:
        self.replies.append(Reply(200, completion(content), delay=seconds))
        return self

    def raw(self, status: int, body: Any) -> FakeModel:
        self.replies.append(Reply(status, body))
        return self

    def _next(self, received: Received) -> Reply:
        with self.lock:
            self.received.append(received)
            return self.replies.popleft() if self.replies else Reply(500, {"error": "empty"})

    def start(self) -> FakeModel:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server hook
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                reply = fake._next(Received(self.path, dict(self.headers), body))
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = data.encode() if isinstance(data, str) else data
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
