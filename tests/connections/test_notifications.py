"""The outbox: telling the peer what this side did, until it has heard it."""

import datetime as dt
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from io import StringIO
from pathlib import Path

import jwt
import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections.models import Connection, ConnectionEvent, PeerNotification
from connections.services import actions, outbox
from tests import http_servers
from tests.connections.peers import FakePeer, make_paired

ROOT = Path(__file__).resolve().parents[2]


def later(seconds: float):
    return time_machine.travel(timezone.now() + dt.timedelta(seconds=seconds), tick=True)


def test_a_change_is_queued_and_the_outbox_then_tells_a_reachable_peer(
    connection, peer, admin_user
):
    peer.start()
    notice = actions.deactivate_connection(connection, admin_user)
    # The action itself never calls the peer: it queues, and the worker delivers.
    assert not notice.told
    assert notice.queued == PeerNotification.objects.get()
    assert notice.message == "The remote side will be told in a moment."
    assert not notice.needs_attention
    assert peer.received == []
    queued = PeerNotification.objects.get()
    assert (queued.state, queued.attempts, queued.status) == ("pending", 0, "deactivated")
    assert queued.next_attempt_at <= timezone.now()  # due at once
    assert outbox.deliver_pending_notifications().delivered == 1
    [received] = peer.received
    assert received.method == "POST"
    assert received.path == f"/api/v1/connections/{connection.remote_connection_id}/status/"
    assert received.body["status"] == "deactivated"
    claims = received.claims(connection.shared_secret, audience=str(connection.remote_uid))
    assert claims["conn"] == connection.remote_connection_id
    notification = PeerNotification.objects.get()
    assert notification.state == "delivered"
    assert notification.signing_key == ""


def test_an_unreachable_peer_never_blocks_the_change_on_this_side(connection, admin_user):
    notice = actions.deactivate_connection(connection, admin_user)
    assert notice.queued is not None
    connection.refresh_from_db()
    assert connection.status == "deactivated"
    event = connection.events.get(kind="deactivated")
    assert event.actor_user == admin_user
    assert outbox.deliver_pending_notifications().retrying == 1
    notification = PeerNotification.objects.get()
    assert notification.state == "pending"
    assert notification.attempts == 1
    assert "Could not connect" in notification.last_error
    wait = (notification.next_attempt_at - timezone.now()).total_seconds()
    assert 10 < wait < 20


def test_the_outbox_delivers_once_the_peer_is_back_and_the_wait_is_over(connection, peer):
    actions.deactivate_connection(connection)
    assert outbox.deliver_pending_notifications().retrying == 1  # the peer is down
    peer.start()
    assert outbox.deliver_pending_notifications().attempted == 0  # still waiting
    assert peer.received == []
    with later(20):
        report = outbox.deliver_pending_notifications()
    assert report.delivered == 1
    assert [r.body["status"] for r in peer.received] == ["deactivated"]
    notification = PeerNotification.objects.get()
    assert notification.state == "delivered"
    assert notification.attempts == 2
    assert notification.delivered_at is not None
    assert notification.signing_key == ""


def test_the_wait_between_attempts_doubles_up_to_an_hour(connection):
    actions.deactivate_connection(connection)
    outbox.deliver_pending_notifications()  # the first attempt
    waits = []
    for _ in range(12):
        outbox.deliver_pending_notifications(ignore_backoff=True)
        notification = PeerNotification.objects.get()
        waits.append((notification.next_attempt_at - timezone.now()).total_seconds())
    assert notification.attempts == 13
    assert notification.state == "pending"
    # The bounds of the ±10% jitter, less the milliseconds the loop itself takes.
    assert 26.5 < waits[0] < 33
    assert 53.5 < waits[1] < 66
    assert all(b >= a * 0.8 for a, b in zip(waits, waits[1:], strict=False))
    assert 3240 < waits[-1] < 3960


def test_a_peer_that_no_longer_knows_the_connection_ends_the_retries(connection, peer):
    peer.answer = lambda r: (401, {"code": "unknown_connection", "detail": "No such connection."})
    peer.start()
    actions.deactivate_connection(connection)
    assert outbox.deliver_pending_notifications().failed == 1
    notification = PeerNotification.objects.get()
    assert notification.state == "failed"
    assert "does not know this connection" in notification.last_error
    with later(7200):
        assert outbox.deliver_pending_notifications().attempted == 0


def test_a_peer_that_rejects_the_token_is_asked_again_later(connection, peer):
    peer.answer = lambda r: (401, {"code": "token_expired", "detail": "Check the clocks."})
    peer.start()
    actions.deactivate_connection(connection)
    assert outbox.deliver_pending_notifications().retrying == 1
    notification = PeerNotification.objects.get()
    assert notification.state == "pending"
    assert "rejected this node's token (token_expired)" in notification.last_error
    peer.answer = FakePeer().answer
    with later(20):
        assert outbox.deliver_pending_notifications().delivered == 1


def test_only_the_newest_untold_change_is_sent(connection, peer):
    actions.deactivate_connection(connection)
    actions.activate_connection(connection)
    states = dict(PeerNotification.objects.values_list("status", "state"))
    assert states == {"deactivated": "cancelled", "active": "pending"}
    peer.start()
    with later(20):
        outbox.deliver_pending_notifications()
    assert [r.body["status"] for r in peer.received] == ["active"]


def test_a_deleted_connection_is_still_told_to_the_peer_later(connection, peer, admin_user):
    secret, remote_id = connection.shared_secret, connection.remote_connection_id
    remote_uid = connection.remote_uid
    notice = actions.delete_connection(connection, admin_user)
    assert not notice.told
    assert notice.queued is not None
    assert not Connection.objects.exists()
    deleted = ConnectionEvent.objects.get(kind="deleted")
    assert deleted.connection is None
    assert deleted.connection_name == "Acme to Globex"
    assert deleted.actor_user == admin_user
    peer.start()
    with later(20):
        assert outbox.deliver_pending_notifications().delivered == 1
    [received] = peer.received
    assert received.path == f"/api/v1/connections/{remote_id}/status/"
    assert received.body["status"] == "deleted"
    assert received.claims(secret, audience=str(remote_uid))["conn"] == remote_id


def test_a_notification_another_sender_holds_is_left_alone(connection, peer):
    actions.deactivate_connection(connection)
    peer.start()
    with later(20):
        held = PeerNotification.objects.due().claim(5)
        assert len(held) == 1
        assert outbox.deliver_pending_notifications().attempted == 0
    # A sender that died mid-call frees the row when its lease runs out.
    with later(20 + PeerNotification.CLAIM_LEASE.total_seconds() + 1):
        assert outbox.deliver_pending_notifications().delivered == 1
    assert held[0].mark_delivered() is False  # the late sender no longer owns it
    assert len(peer.received) == 1


def test_a_local_connection_tells_its_other_side_in_process(node, peer, settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    source = make_paired(name="Local A", remote_uid=node.uid, remote_url=peer.url)
    target = make_paired(
        name="Local B",
        role="destination",
        remote_uid=node.uid,
        remote_url=peer.url,
        remote_connection_id=str(source.id),
        shared_secret=source.shared_secret,
    )
    source.remote_connection_id = str(target.id)
    source.save()
    peer.start()
    assert actions.deactivate_connection(source).told
    target.refresh_from_db()
    assert target.remote_status == "deactivated"
    assert actions.delete_connection(source).told
    target.refresh_from_db()
    assert target.status == "error"
    assert target.status_reason == "deleted on the remote side"
    assert not PeerNotification.objects.exists()
    assert peer.received == []  # no HTTP to itself


def test_a_connection_without_a_peer_is_deleted_without_telling_anyone(node):
    pending = make_paired(status="pending", remote_uid=None, remote_connection_id="")
    notice = actions.delete_connection(pending)
    assert notice.told
    assert not PeerNotification.objects.exists()


def test_a_private_network_peers_notification_waits_for_its_pull_and_is_never_pushed(node):
    connection = make_paired(remote_url="")
    notice = actions.deactivate_connection(connection)
    assert not notice.told and not notice.needs_attention
    assert "private network" in notice.message
    assert "when its node next asks this one" in notice.message
    waiting = PeerNotification.objects.get()
    assert (waiting.state, waiting.status, waiting.remote_url) == ("pending", "deactivated", "")
    assert outbox.deliver_pending_notifications(ignore_backoff=True).attempted == 0
    assert actions.tell_peer_now(notice) == notice  # a command does not call it either
    assert PeerNotification.objects.get().attempts == 0


def test_a_private_peers_notification_is_delivered_by_handing_it_over(node):
    connection = make_paired(remote_url="")
    assert outbox.hand_over(connection) is None  # nothing reported yet
    actions.deactivate_connection(connection, reason="Maintenance")
    actions.activate_connection(connection)
    report = outbox.hand_over(connection)
    assert (report["status"], report["reason"]) == ("active", "")
    states = dict(PeerNotification.objects.values_list("status", "state"))
    assert states == {"deactivated": "cancelled", "active": "delivered"}
    assert PeerNotification.objects.get(state="delivered").signing_key == ""
    assert outbox.hand_over(connection) == report  # handed over again at every pull


def test_deleting_a_connection_to_a_private_peer_queues_nothing_its_pull_finds_out(node):
    connection = make_paired(remote_url="")
    notice = actions.delete_connection(connection)
    assert not notice.told and not notice.needs_attention
    assert "will find this connection gone" in notice.message
    assert not PeerNotification.objects.exists()


def test_the_command_delivers_what_is_due(connection, peer):
    actions.deactivate_connection(connection)
    outbox.deliver_pending_notifications()  # the peer is down: the next try is 15 s ahead
    peer.start()
    out = StringIO()
    call_command("deliver_notifications", stdout=out)
    assert "delivered 0" in out.getvalue()
    call_command("deliver_notifications", "--now", stdout=out)
    assert "delivered 1, to retry 0, failed for good 0" in out.getvalue()
    assert PeerNotification.objects.get().state == "delivered"


def test_the_command_refuses_a_batch_size_of_zero(db):
    with pytest.raises(CommandError, match="positive"):
        call_command("deliver_notifications", "--batch-size", "0")


@pytest.mark.postgres
def test_two_senders_on_postgresql_deliver_each_notification_exactly_once(
    transactional_db, node, settings
):
    peer = FakePeer(delay=0.02).start()
    try:
        rows = []
        for number in range(40):
            connection = make_paired(name=f"Connection {number}", remote_url=peer.url)
            rows.append(PeerNotification.for_connection(connection, "deactivated"))
        db = settings.DATABASES["default"]
        url = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        env = {**os.environ, "DATABASE_URL": url, "EXALATE_ALLOW_PRIVATE_NETWORKS": "true"}
        command = [sys.executable, "manage.py", "deliver_notifications", "--batch-size", "3"]
        senders = [
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [sender.communicate(timeout=120)[0] for sender in senders]
        assert all(sender.returncode == 0 for sender in senders)
    finally:
        peer.stop()
    sent = Counter(r.path for r in peer.received)
    assert len(sent) == 40
    assert set(sent.values()) == {1}
    assert set(PeerNotification.objects.values_list("state", flat=True)) == {"delivered"}
    # Both senders did part of the work.
    delivered = [int(out.split("delivered ")[1].split(",")[0]) for out in outputs]
    assert sum(delivered) == 40
    assert all(count > 0 for count in delivered), outputs
    assert django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def test_settled_notifications_are_forgotten_after_30_days(connection):
    actions.deactivate_connection(connection)  # peer down: stays pending
    old = PeerNotification.for_connection(connection, "active")  # supersedes the first
    PeerNotification.objects.filter(pk=old.pk).update(state="delivered")
    with later(31 * 86400):
        assert outbox.purge_settled_notifications() == 2
    assert not PeerNotification.objects.exists()


def test_a_pending_notification_is_never_forgotten(connection):
    actions.deactivate_connection(connection)
    with later(365 * 86400):
        assert outbox.purge_settled_notifications() == 0
    assert PeerNotification.objects.get().state == "pending"


def test_a_change_the_peer_can_never_hear_does_not_promise_more_attempts(connection, peer):
    peer.answer = lambda r: (401, {"code": "unknown_connection", "detail": "No such connection."})
    peer.start()
    notice = actions.tell_peer_now(actions.deactivate_connection(connection))
    assert not notice.told
    assert notice.queued is None
    assert notice.message.startswith("The remote side could not be told.")
    assert "does not know this connection" in notice.message
    assert "keeps trying" not in notice.message


def test_deleting_after_the_peer_deleted_its_side_tells_nobody(connection, peer, admin_user):
    peer.start()
    actions.record_remote_status(connection, "deleted", reason="gone")
    connection.refresh_from_db()
    assert connection.status == "error"
    notice = actions.delete_connection(connection, admin_user)
    assert notice.told
    assert notice.message == (
        "The remote side had already deleted its side, so there was nobody to tell."
    )
    assert peer.received == []
    assert not PeerNotification.objects.exists()
    assert not Connection.objects.exists()


@pytest.mark.parametrize("action", ["deactivate", "activate", "delete"])
def test_an_action_answers_at_once_and_never_calls_even_a_hung_peer(node, settings, action):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    with http_servers.silent() as hung:
        status = "deactivated" if action == "activate" else "active"
        connection = make_paired(remote_url=hung.url, status=status)
        started = time.monotonic()
        notice = getattr(actions, f"{action}_connection")(connection)
        took = time.monotonic() - started
        assert hung.requests == []  # not even a connection was opened
    assert took < 1.0
    assert notice.queued is not None
    expected = {"deactivate": "deactivated", "activate": "active", "delete": "deleted"}[action]
    assert PeerNotification.objects.get().status == expected


def test_telling_a_peer_now_reports_that_it_heard(connection, peer):
    peer.start()
    notice = actions.tell_peer_now(actions.deactivate_connection(connection))
    assert notice.told
    assert notice.message == "The remote side was told."
    assert [r.body["status"] for r in peer.received] == ["deactivated"]
    assert PeerNotification.objects.get().state == "delivered"


def test_telling_a_peer_now_that_is_down_leaves_it_to_the_outbox(connection):
    notice = actions.tell_peer_now(actions.deactivate_connection(connection))
    assert not notice.told
    assert notice.queued is not None  # the worker retries it
    assert notice.message.startswith("The remote side could not be told yet. Could not connect")
    assert notice.message.endswith(". This node keeps trying.")
    notification = PeerNotification.objects.get()
    assert (notification.state, notification.attempts) == ("pending", 1)


def test_telling_a_peer_now_leaves_a_notification_the_worker_holds_to_the_worker(connection, peer):
    peer.start()
    queued = actions.deactivate_connection(connection)
    [held] = PeerNotification.objects.due().claim(1)  # the worker took it first
    assert actions.tell_peer_now(queued) == queued
    assert peer.received == []
    assert held.mark_delivered()


def test_a_local_side_confirms_its_issuer_in_process_without_queuing(node):
    pending = make_paired(name="Local A", status="pending", remote_uid=node.uid)
    accepted = make_paired(
        name="Local B",
        role="destination",
        remote_uid=node.uid,
        remote_connection_id=str(pending.id),
        shared_secret=pending.shared_secret,
    )
    pending.remote_connection_id = str(accepted.id)
    pending.save()
    notice = actions.confirm_to_peer(accepted)
    assert notice.told
    pending.refresh_from_db()
    assert (pending.status, pending.remote_status) == ("active", "active")
    assert not PeerNotification.objects.exists()


def test_a_bulk_action_says_what_became_of_each_connection(node, admin_user):
    queued = make_paired(name="Queued")
    private = make_paired(name="Private", remote_url="")
    waiting = make_paired(name="Waiting", status="pending")
    gone = make_paired(name="Gone")
    Connection.objects.filter(pk=gone.pk).delete()
    outcomes = actions.deactivate_connections([queued, private, waiting, gone], admin_user)
    by_name = {outcome.connection.name: outcome for outcome in outcomes}
    assert by_name["Queued"].notice.queued == PeerNotification.objects.get(remote_url__gt="")
    assert by_name["Private"].notice.queued.remote_url == ""  # waits for its pull
    assert not by_name["Private"].notice.needs_attention
    assert "private network" in by_name["Private"].notice.message
    assert isinstance(by_name["Waiting"].refused, actions.ConnectionActionError)
    assert str(by_name["Waiting"].refused).startswith("Only an active connection")
    assert isinstance(by_name["Gone"].refused, actions.ConnectionGone)
    assert dict(Connection.objects.values_list("name", "status")) == {
        "Queued": "deactivated",
        "Private": "deactivated",
        "Waiting": "pending",
    }
    events = ConnectionEvent.objects.filter(kind="deactivated")
    assert sorted(e.connection.name for e in events) == ["Private", "Queued"]
    assert {e.actor_user for e in events} == {admin_user}


@pytest.mark.parametrize("action", ["deactivate", "activate", "delete"])
def test_a_bulk_action_costs_the_same_statements_for_3_or_40_connections(node, action):
    status = "deactivated" if action == "activate" else "active"
    run = getattr(actions, f"{action}_connections")
    counts = []
    # (Past 40 or so, SQLite's limit on query parameters splits an insert in two.)
    for number in (3, 40):
        rows = [make_paired(name=f"{number}-{n}", status=status) for n in range(number)]
        with CaptureQueriesContext(db_connection) as queries:
            outcomes = run(rows)
        assert all(outcome.notice.queued is not None for outcome in outcomes)
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert PeerNotification.objects.filter(state="pending").count() == 43


def queue_for(peer_url: str, number: int, prefix: str = "Batch") -> list[PeerNotification]:
    connections = [make_paired(name=f"{prefix} {n}", remote_url=peer_url) for n in range(number)]
    return PeerNotification.for_connections(connections, "deactivated")


def test_a_batch_costs_the_same_statements_for_3_or_20_notifications(node, peer, settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    peer.start()
    counts = []
    for number in (3, 20):
        queue_for(peer.url, number, prefix=f"Of {number}")
        with CaptureQueriesContext(db_connection) as queries:
            report = outbox.deliver_pending_notifications(batch_size=25)
        assert report.delivered == number
        counts.append(len(queries))
    # Its claim and one update for all it delivered: the claim came back short of 25, so
    # no next batch is looked for.
    assert counts[0] == counts[1]
    assert len(peer.received) == 23
    assert set(PeerNotification.objects.values_list("state", flat=True)) == {"delivered"}
    assert set(PeerNotification.objects.values_list("signing_key", flat=True)) == {""}


def test_a_claim_that_comes_back_short_is_the_last_of_the_run(node, peer, settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    peer.start()
    queue_for(peer.url, 4)
    with CaptureQueriesContext(db_connection) as full:
        assert outbox.deliver_pending_notifications(batch_size=2).delivered == 4
    queue_for(peer.url, 3, prefix="Short")
    with CaptureQueriesContext(db_connection) as short:
        assert outbox.deliver_pending_notifications(batch_size=2).delivered == 3

    def claims(queries) -> list[str]:
        sqls = [q["sql"] for q in queries.captured_queries]
        selects = [s for s in sqls if s.startswith("SELECT") and "peernotification" in s]
        return [s for s in selects if "LIMIT" in s]

    # 4 rows: two full claims and one that finds nothing; 3 rows: a full and a short one.
    assert (len(claims(full)), len(claims(short))) == (3, 2)


def test_the_node_settings_are_read_once_per_run_not_per_notification(node, peer, settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    peer.start()
    queue_for(peer.url, 5)
    with CaptureQueriesContext(db_connection) as queries:
        assert outbox.deliver_pending_notifications(batch_size=2).delivered == 5
    reads = [q for q in queries if "nodes_generalsettings" in q["sql"]]
    assert len(reads) == 1
    # Every token still names this node as its issuer.
    issuers = {
        jwt.decode(r.headers["authorization"][7:], options={"verify_signature": False})["iss"]
        for r in peer.received
    }
    assert issuers == {str(node.uid)}


def test_one_batch_settles_each_notification_as_its_peer_answered(node, settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    heard, gone = make_paired(name="Heard"), make_paired(name="Gone")

    def answer(received):
        if gone.remote_connection_id in received.path:
            return 401, {"code": "unknown_connection", "detail": "No such connection."}
        return 200, {"id": "x", "name": "n", "mode": "script", "status": "active"}

    up = FakePeer(answer=answer).start()
    try:
        for connection in (heard, gone):
            connection.remote_url = up.url
            connection.save()
        down = make_paired(name="Down", remote_url=FakePeer().url)  # nobody listens there
        PeerNotification.for_connections([heard, gone, down], "deactivated")
        report = outbox.deliver_pending_notifications(batch_size=20)
    finally:
        up.stop()
    assert (report.delivered, report.failed, report.retrying) == (1, 1, 1)
    states = dict(PeerNotification.objects.values_list("connection_name", "state"))
    assert states == {"Heard": "delivered", "Gone": "failed", "Down": "pending"}
    down_row = PeerNotification.objects.get(connection_name="Down")
    assert down_row.signing_key  # kept for the retry
    assert down_row.claim_token is None and down_row.claimed_until is None
    assert "Could not connect" in down_row.last_error
    assert PeerNotification.objects.get(connection_name="Heard").delivered_at is not None


def test_a_batch_leaves_a_row_another_sender_took_over_to_that_sender(connection, peer):
    PeerNotification.for_connections(
        [connection, make_paired(name="Second"), make_paired(name="Third")], "deactivated"
    )
    claimed = PeerNotification.objects.due().claim(3)
    assert len({n.claim_token for n in claimed}) == 1  # one claim, one token
    # The lease of the first ran out meanwhile and another sender claimed it.
    later_claim = uuid.uuid4()
    PeerNotification.objects.filter(pk=claimed[0].pk).update(claim_token=later_claim)
    assert PeerNotification.mark_all_delivered(claimed) == 2
    assert [n.state for n in claimed] == ["pending", "delivered", "delivered"]
    taken_over = PeerNotification.objects.get(pk=claimed[0].pk)
    assert (taken_over.state, taken_over.claim_token) == ("pending", later_claim)
    assert taken_over.signing_key  # the other sender still signs with it
    assert PeerNotification.objects.filter(state="delivered").count() == 2


@pytest.fixture
def calls_at_once(monkeypatch) -> list[int]:
    """The most calls that were out at the same time (one item, filled as calls go out)."""
    lock, out, most = threading.Lock(), [0], [0]
    post = outbox._post

    def counted(call):
        with lock:
            out[0] += 1
            most[0] = max(most[0], out[0])
        try:
            post(call)
        finally:
            with lock:
                out[0] -= 1

    monkeypatch.setattr(outbox, "_post", counted)
    return most


def test_a_slow_peer_gets_a_batch_several_calls_at_a_time(node, settings, calls_at_once):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    slow = FakePeer(delay=0.4).start()
    try:
        queue_for(slow.url, 8)
        started = time.monotonic()
        assert outbox.deliver_pending_notifications(batch_size=20).delivered == 8
        took = time.monotonic() - started
    finally:
        slow.stop()
    # One call after another would take 8 × 0.4 s = 3.2 s; four at a time about 0.8 s
    # (and a few tenths more while the sending threads join one by one).
    assert took < 2.6
    assert calls_at_once == [outbox.SEND_AT_ONCE]
    assert len(slow.received) == 8


def test_a_peer_that_answers_at_once_is_sent_one_call_at_a_time(
    node, peer, settings, calls_at_once
):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    peer.start()
    queue_for(peer.url, 30)
    assert outbox.deliver_pending_notifications(batch_size=10).delivered == 30
    # More threads would only fight over the interpreter: one sends them all.
    assert calls_at_once == [1]


def test_a_hung_call_does_not_hold_up_the_calls_queued_behind_it(node, settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    arrived: list[float] = []

    def answer(received):
        arrived.append(time.monotonic())
        if len(arrived) == 1:
            time.sleep(1.5)  # the first call hangs; the others are answered at once
        return 200, {"id": "x", "name": "n", "mode": "script", "status": "active"}

    hung = FakePeer(answer=answer).start()
    try:
        queue_for(hung.url, 6)
        started = time.monotonic()
        assert outbox.deliver_pending_notifications().delivered == 6
    finally:
        hung.stop()
    # Another sending thread joined after SLOW_CALL and took the five queued calls.
    assert len(arrived) == 6
    assert max(arrived) - started < 1.0


def test_the_next_batch_is_claimed_and_sent_while_the_last_one_is_still_out(
    node, peer, settings, monkeypatch
):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    peer.start()
    queue_for(peer.url, 5)
    steps = []
    start, finish = outbox._Batch.start.__func__, outbox._Batch.finish

    def started(cls, notifications, issuer):
        steps.append(f"start {len(notifications)}")
        return start(cls, notifications, issuer)

    def finished(batch):
        steps.append(f"finish {len(batch.notifications)}")
        return finish(batch)

    monkeypatch.setattr(outbox._Batch, "start", classmethod(started))
    monkeypatch.setattr(outbox._Batch, "finish", finished)
    assert outbox.deliver_pending_notifications(batch_size=2).delivered == 5
    # Two batches out before the first is settled; each settle makes room for one more.
    assert steps == ["start 2", "start 2", "finish 2", "start 1", "finish 2", "finish 1"]
    assert len(peer.received) == 5
    assert set(PeerNotification.objects.values_list("state", flat=True)) == {"delivered"}


def test_a_claim_queued_behind_other_calls_holds_until_they_could_all_have_timed_out(db):
    from nodes import client

    worst_call = client.TOTAL_TIMEOUT + client.READ_TIMEOUT
    assert outbox.lease_for(1) <= PeerNotification.CLAIM_LEASE  # the usual lease serves
    # 100 calls four at a time: 25 rounds of calls that each wait out their limits.
    assert outbox.lease_for(100) > dt.timedelta(seconds=25 * worst_call)
    PeerNotification.for_connections([make_paired(name="Queued")], "deactivated")
    before = timezone.now()
    [claimed] = PeerNotification.objects.due().claim(1, lease=outbox.lease_for(100))
    assert claimed.claimed_until >= before + outbox.lease_for(100)
    [short] = PeerNotification.objects.filter(pk=claimed.pk)
    assert short.claimed_until == claimed.claimed_until
    # A lease shorter than the usual one is never given.
    PeerNotification.objects.filter(pk=claimed.pk).update(claimed_until=None)
    [again] = PeerNotification.objects.unclaimed().claim(1, lease=dt.timedelta(seconds=1))
    assert again.claimed_until >= before + PeerNotification.CLAIM_LEASE
