"""Helpers for tests of a connection's life after the handshake: a paired connection and a
fake peer node (a real HTTP server on 127.0.0.1 that records what it is sent)."""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

from connections.auth import sign_token
from connections.models import Connection
from nodes.models import GeneralSettings
from tests.livenodes import free_port


def make_paired(name: str = "Acme to Globex", **fields) -> Connection:
    """An active connection whose peer is described but lives nowhere yet."""
    values = {
        "name": name,
        "mode": "script",
        "role": "source",
        "local_short_name": "acme",
        "remote_short_name": "globex",
        "remote_url": "https://globex.example",
        "remote_uid": uuid.uuid4(),
        "remote_connection_id": str(uuid.uuid4()),
        "remote_platform": "xurrent",
        "status": "active",
        "shared_secret": secrets.token_urlsafe(32),
        **fields,
    }
    connection = Connection.objects.create(**values)
    if connection.status != "pending":
        connection.activated_at = connection.created_at
        connection.save(update_fields=["activated_at"])
    return connection


def peer_token(connection: Connection, **overrides) -> str:
    """A token as the peer of `connection` would sign it for this node."""
    values = {
        "key": connection.shared_secret,
        "issuer": str(connection.remote_uid),
        "audience": str(GeneralSettings.load().uid),
        "connection_id": str(connection.id),
        **overrides,
    }
    return sign_token(**values)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict | None

    def claims(self, key: str, audience: str) -> dict:
        token = self.headers["authorization"].removeprefix("Bearer ")
        # A large leeway: tests travel in time, and this checks who signed, not when.
        return jwt.decode(token, key, algorithms=["HS256"], audience=audience, leeway=86400)


@dataclass
class FakePeer:
    """A stand-in remote node. `answer(received) -> (status, body)` decides each reply."""

    port: int = field(default_factory=free_port)
    answer: Callable[[Received], tuple[int, dict]] = lambda r: (
        200,
        {"id": "x", "name": "n", "mode": "script", "status": "active"},
    )
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakePeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                received = Received(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                peer.received.append(received)
                if peer.delay:
                    time.sleep(peer.delay)
                status, body = peer.answer(received)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
