"""Webhooks reach a local receiver: plain, signed (RS256), retried, and misbehaving on demand."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.xurrent_sim.conftest import new_request
from tests.xurrent_sim.receiver import receiving
from xurrent_sim.testing import running_simulator
from xurrent_sim.webhooks import WebhookSender


@pytest.fixture(scope="module")
def receiver():
    with receiving() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def hooked(receiver, tmp_path_factory):
    log = tmp_path_factory.mktemp("hooked") / "sim.log"
    extra = ["--webhook-backoff", "0.05", "--quiet"]
    with running_simulator(webhooks=[receiver.url], log_path=log, extra_args=extra) as sim:
        yield sim


@pytest.fixture
def sim(hooked, receiver):
    hooked.reset()
    receiver.clear()
    return hooked


@pytest.fixture
def api(sim):
    with httpx.Client(base_url=sim.url, headers=sim.headers, timeout=10) as client:
        yield client


def test_a_create_an_update_and_a_note_each_send_their_event(api, sim, receiver):
    request = new_request(api)
    api.patch(f"/requests/{request['id']}", json={"status": "in_progress"})
    api.post(f"/requests/{request['id']}/notes", json={"text": "hi"})
    bodies = receiver.wait_for(3)
    assert [b["event"] for b in bodies] == [
        "request.create",
        "request.update",
        "request.note-added",
    ]
    first = bodies[0]
    assert first["webhook_id"] == 1
    assert first["account"] == sim.account
    assert first["object_id"] == request["id"]
    assert first["person_id"] == 5
    assert first["person_name"] == "Integration User"
    assert first["payload"]["subject"] == request["subject"]
    assert bodies[1]["payload"]["status"] == "in_progress"
    assert bodies[2]["payload"]["note"]["text"] == "hi"


def test_a_webhook_links_to_its_request(api, sim, receiver):
    request = new_request(api)
    receiver.wait_for(1)
    link = f'<{sim.url}/requests/{request["id"]}>; rel="canonical"'
    assert receiver.calls[0]["headers"]["Link"] == link


def test_a_patch_that_changes_nothing_sends_nothing(api, sim, receiver):
    request = new_request(api)
    api.patch(f"/requests/{request['id']}", json={"subject": request["subject"]})
    assert sim.wait_for_webhooks()
    assert [b["event"] for b in receiver.bodies()] == ["request.create"]


def test_a_failing_receiver_is_retried_until_it_accepts(api, sim, receiver):
    receiver.fail_next = 2
    new_request(api)
    receiver.wait_for(1)
    assert [c["status"] for c in receiver.calls] == [500, 500, 200]
    # The simulator logs the attempt once the answer is back, just after the receiver
    # counted the call.
    deadline = time.monotonic() + 5
    while "(attempt 3)" not in sim.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "(attempt 3)" in sim.log()


def test_a_receiver_that_keeps_failing_is_given_up_after_the_retries(api, sim, receiver):
    receiver.fail_next = 99
    new_request(api)
    assert sim.wait_for_webhooks()
    assert len(receiver.calls) == 4
    assert sim.stats()["webhooks"] == {"failed": 1}


def test_a_slow_receiver_never_delays_the_answer(api, sim, receiver):
    receiver.delay = 2.0
    started = time.monotonic()
    new_request(api)
    assert time.monotonic() - started < 1.0
    receiver.wait_for(1)


def test_dropped_webhooks_never_arrive(api, sim, receiver):
    sim.fault("webhook_drop")
    new_request(api, subject="lost")
    new_request(api, subject="kept")
    bodies = receiver.wait_for(1)
    assert sim.wait_for_webhooks()
    assert [b["payload"]["subject"] for b in receiver.bodies()] == ["kept"]
    assert bodies


def test_duplicated_webhooks_arrive_twice(api, sim, receiver):
    sim.fault("webhook_duplicate")
    request = new_request(api)
    bodies = receiver.wait_for(2)
    assert [b["object_id"] for b in bodies] == [request["id"], request["id"]]


def test_reordered_webhooks_arrive_newest_first(api, sim, receiver):
    sim.fault("webhook_reorder", count=3)
    made = [new_request(api, subject=f"r{i}")["id"] for i in range(3)]
    bodies = receiver.wait_for(3)
    assert [b["object_id"] for b in bodies] == list(reversed(made))


def test_an_early_webhook_is_taken_before_the_write_is_answered(api, sim, receiver):
    receiver.delay = 0.3  # the receiver takes its time to answer
    sim.fault("webhook_early")
    new_request(api)
    answered = time.monotonic()
    assert receiver.calls and receiver.calls[0]["done"] < answered


def test_a_normal_webhook_does_not_wait_for_the_receiver(api, sim, receiver):
    receiver.delay = 1.0
    new_request(api)
    answered = time.monotonic()
    receiver.wait_for(1)
    assert receiver.calls[0]["done"] > answered


def test_webhook_deliveries_are_listed(api, sim, receiver):
    request = new_request(api)
    sim.wait_for_webhooks()
    deliveries = sim.webhooks()["deliveries"]
    assert deliveries == [
        {
            "url": receiver.url,
            "webhook_id": 1,
            "event": "request.create",
            "object_id": request["id"],
            "attempts": 1,
            "status": 200,
            "outcome": "delivered",
        }
    ]


def test_signed_webhooks_carry_a_jwt_that_the_public_key_verifies(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "key.pem").write_bytes(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with receiving() as receiver:
        options = {
            "webhooks": [receiver.url],
            "webhook_key": tmp_path / "key.pem",
            "extra_args": ["--webhook-audience", "exalate-node"],
            "log_path": tmp_path / "sim.log",
        }
        with running_simulator(**options) as sim:
            with httpx.Client(base_url=sim.url, headers=sim.headers) as api:
                request = new_request(api)
            (body,) = receiver.wait_for(1)
    assert set(body) == {"jwt"}
    claims = jwt.decode(body["jwt"], public, algorithms=["RS256"], audience="exalate-node")
    assert {"iss", "aud", "sub", "jti", "iat", "nbf", "exp"} <= set(claims)
    assert claims["sub"] == "1"
    assert claims["data"]["event"] == "request.create"
    assert claims["data"]["object_id"] == request["id"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(body["jwt"], other, algorithms=["RS256"], audience="exalate-node")


class _KeepAlive(BaseHTTPRequestHandler):
    """A receiver on HTTP/1.1 that keeps connections open, and can drop one on demand."""

    protocol_version = "HTTP/1.1"
    connections: list = []
    drop_after_answer = False

    def setup(self):
        super().setup()
        self.connections.append(self.client_address)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if type(self).drop_after_answer:
            self.close_connection = True  # as a server whose keep-alive time ran out

    def log_message(self, *args):
        pass


@pytest.fixture
def keep_alive_receiver():
    _KeepAlive.connections = []
    _KeepAlive.drop_after_answer = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook/"
    server.shutdown()


def delivered(sender: WebhookSender, count: int) -> list[str]:
    for n in range(count):
        [delivery] = sender.build("request.update", n + 1, {"id": 1, "name": "Ann"}, {"id": n})
        sender.enqueue(delivery)
    assert sender.wait_idle()
    return [d["outcome"] for d in sender.summary()["deliveries"]]


def test_webhooks_to_one_receiver_share_a_kept_connection(keep_alive_receiver):
    sender = WebhookSender([keep_alive_receiver], "acme", lambda: "http://sim", log=lambda _: None)
    assert delivered(sender, 5) == ["delivered"] * 5
    assert len(_KeepAlive.connections) == 1


def test_a_kept_connection_the_receiver_closed_is_replaced_without_losing_a_webhook(
    keep_alive_receiver,
):
    _KeepAlive.drop_after_answer = True
    log: list[str] = []
    sender = WebhookSender([keep_alive_receiver], "acme", lambda: "http://sim", log=log.append)
    outcomes = []
    for _ in range(3):  # each call finds the last connection closed by the receiver
        outcomes += delivered(sender, 1)
        sender.clear()
        time.sleep(0.05)
    assert outcomes == ["delivered"] * 3
    assert all("(attempt 1)" in line for line in log), log
    assert len(_KeepAlive.connections) == 3
