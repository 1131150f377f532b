"""Sending to a remote node in batches: the events (and results) for one peer go in one
call, each still answered and settled on its own; a node from before batches is sent
them one by one."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from sync.models import EventState, InboundEvent, InboundState, SyncEvent, Twin, TwinOrigin
from sync.services import send
from sync.services.send import send_acks, send_events
from tests.connections.peers import FakePeer, make_paired


@pytest.fixture
def peer(settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    send._singles_until.clear()
    fake = FakePeer().start()
    yield fake
    fake.stop()
    send._singles_until.clear()


def queued_events(connection, count):
    events = []
    first = Twin.objects.count() + 100
    for n in range(count):
        twin = Twin.objects.create(
            connection=connection, origin=TwinOrigin.LOCAL, local_request_id=first + n
        )
        events.append(
            SyncEvent.objects.create(connection=connection, twin=twin, seq=1, replica={"n": n})
        )
    return events


def stores_everything(received):
    """A node that takes batches: every event stored, answered 202 queued."""
    body = received.body
    if "events" in body:
        results = [{"status": 202, "event": e["event"], "state": "queued"} for e in body["events"]]
        return 202, {"results": results}
    return 202, {"event": body["event"], "state": "queued"}


def before_batches(received):
    """A node from before batches: a body without an event is a bad request."""
    if "event" not in received.body:
        return 400, {"code": "invalid_request", "detail": "The event is not valid: see errors."}
    return 202, {"event": received.body["event"], "state": "queued"}


def states(events):
    return [SyncEvent.objects.get(pk=e.pk).state for e in events]


def test_the_events_for_one_peer_go_in_one_call_in_their_order(node, peer):
    peer.answer = stores_everything
    connection = make_paired(remote_url=peer.url)
    events = queued_events(connection, 5)
    report = send_events(limit=20)
    assert report.sent == 5
    assert len(peer.received) == 1
    body = peer.received[0].body
    assert body["protocol"] == 1
    assert [e["event"] for e in body["events"]] == [str(e.uuid) for e in events]
    assert body["events"][0] == events[0].wire_body()  # each as it would go alone
    assert states(events) == [EventState.SENT] * 5


def test_a_node_from_before_batches_is_sent_the_events_one_by_one(node, peer):
    peer.answer = before_batches
    connection = make_paired(remote_url=peer.url)
    events = queued_events(connection, 3)
    assert send_events(limit=20).sent == 3
    assert states(events) == [EventState.SENT] * 3
    assert ["events" in r.body for r in peer.received] == [True, False, False, False]

    more = queued_events(connection, 2)
    send_events(limit=20)
    assert ["events" in r.body for r in peer.received[4:]] == [False, False]  # no batch again
    assert states(more) == [EventState.SENT] * 2


def test_an_answer_to_the_whole_batch_is_each_events_answer(node, peer):
    peer.answer = lambda r: (409, {"code": "connection_inactive", "detail": "Deactivated."})
    connection = make_paired(remote_url=peer.url)
    events = queued_events(connection, 3)
    assert send_events(limit=20).held == 3
    assert states(events) == [EventState.QUEUED] * 3
    assert all(SyncEvent.objects.get(pk=e.pk).next_try_at > timezone.now() for e in events)


def test_each_event_of_a_batch_takes_its_own_answer(node, peer):
    def mixed(received):
        first, second = received.body["events"]
        return 202, {
            "results": [
                {"status": 202, "event": first["event"], "state": "queued"},
                {"status": 409, "event": second["event"], "code": "event_conflict", "detail": "x"},
            ]
        }

    peer.answer = mixed
    connection = make_paired(remote_url=peer.url)
    events = queued_events(connection, 2)
    report = send_events(limit=20)
    assert (report.sent, report.failed) == (1, 1)
    assert states(events) == [EventState.SENT, EventState.FAILED]


def test_the_results_for_one_peer_go_in_one_call(node, peer):
    def takes_all(received):
        results = [
            {"status": 200, "event": r["event"], "state": r["state"]}
            for r in received.body["results"]
        ]
        return 200, {"results": results}

    peer.answer = takes_all
    connection = make_paired(remote_url=peer.url)
    twin = Twin.objects.create(connection=connection, origin=TwinOrigin.REMOTE, local_request_id=5)
    inbound = [
        InboundEvent.objects.create(
            connection=connection,
            uuid=uuid.uuid4(),
            twin=twin,
            seq=n,
            state=InboundState.APPLIED,
            request_id="5",
            ack_pending=True,
            ack_next_try_at=timezone.now() - timedelta(seconds=1),
        )
        for n in (1, 2, 3)
    ]
    assert send_acks(limit=50) == 3
    assert len(peer.received) == 1
    assert [r["event"] for r in peer.received[0].body["results"]] == [str(i.uuid) for i in inbound]
    assert not InboundEvent.objects.filter(ack_pending=True).exists()


def test_a_batch_answer_without_its_results_is_retried_not_failed(node, peer):
    peer.answer = lambda r: (202, {"state": "queued"})
    connection = make_paired(remote_url=peer.url)
    events = queued_events(connection, 2)
    assert send_events(limit=20).retrying == 2
    assert states(events) == [EventState.QUEUED] * 2
