"""The handshake between live nodes when the issuer's answer is lost on the way back.

A sits behind a proxy that is A's public address (its Exalate URL, so also the address in
its codes). The proxy lets B's accept call reach A but drops A's answer, as a network
would: A has paired its side, B has nothing. A shows that it waits for B to confirm, and
B's retry of the same code completes both sides.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.livenodes import eventually, free_port, initiate_between, start_node

pytestmark = pytest.mark.e2e


class AnswerDroppingProxy(ThreadingHTTPServer):
    """Forwards every call to `target`; drops the answer of the next accept call."""

    daemon_threads = True

    def __init__(self, port: int, target: str):
        super().__init__(("127.0.0.1", port), _Forward)
        self.target = target
        self.drop_next_accept = False
        self.dropped = 0


class _Forward(BaseHTTPRequestHandler):
    def do_GET(self):
        self._forward()

    def do_POST(self):
        self._forward()

    def _forward(self):
        proxy: AnswerDroppingProxy = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        answer = httpx.request(
            self.command, proxy.target + self.path, content=body, headers=headers, timeout=20
        )
        if proxy.drop_next_accept and self.path.endswith("/invitations/accept/"):
            proxy.drop_next_accept = False
            proxy.dropped += 1
            self.close_connection = True  # A has answered; B never hears it
            return
        self.send_response(answer.status_code)
        for name in ("Content-Type", "Retry-After"):
            if name in answer.headers:
                self.send_header(name, answer.headers[name])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, *args):
        pass


@pytest.fixture
def issuer_behind_proxy(tmp_path):
    port = free_port()
    a = start_node(tmp_path / "a", "a", EXALATE_NODE_URL=f"http://127.0.0.1:{port}")
    proxy = AnswerDroppingProxy(port, a.url)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    b = start_node(tmp_path / "b", "b")
    yield a, b, proxy
    proxy.shutdown()
    b.stop()
    a.stop()


def status_on(node, connection_id: str) -> str:
    return last_line(
        node.shell(
            "from connections.models import Connection as C\n"
            f"c = C.objects.filter(pk={connection_id!r}).first()\n"
            "print('none' if c is None else ('confirming' if c.awaits_confirmation else c.status))"
        )
    )


def last_line(output: str) -> str:
    return output.splitlines()[-1]  # the shell may say what it imported first


def test_a_lost_answer_leaves_the_issuer_waiting_and_a_retry_completes_both_sides(
    issuer_behind_proxy,
):
    a, b, proxy = issuer_behind_proxy
    connection_id, code = initiate_between(a, b, "Lost answer")
    proxy.drop_next_accept = True

    lost = b.manage("accept_invitation", code, check=False)
    assert lost.returncode == 1 and proxy.dropped == 1
    count = b.shell("from connections.models import Connection as C; print(C.objects.count())")
    assert last_line(count) == "0"
    # A never shows Active facing a side that does not exist.
    assert status_on(a, connection_id) == "confirming"

    retry = b.manage("accept_invitation", code)
    b_id, b_status = retry.stdout.strip().splitlines()[-1].split()
    assert b_status == "active"
    # B's confirmation reaches A: from the command itself, or B's worker if it was quicker.
    eventually(lambda: status_on(a, connection_id) == "active", timeout=20)
    # Both derived the same secret without sending it: A's signed call reaches B.
    check = a.shell(
        "from connections.models import Connection as C\n"
        "from connections.services.peer import test_connection\n"
        f"print(test_connection(C.objects.get(pk={connection_id!r})).ok)"
    )
    assert last_line(check) == "True"
    assert status_on(b, b_id) == "active"
