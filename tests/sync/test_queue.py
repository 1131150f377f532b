"""The sync queue: claims, leases, per-twin order, seq and superseded events."""

from datetime import timedelta

import pytest
from django.utils import timezone

from sync.models import (
    EventState,
    InboundState,
    SyncEvent,
    Twin,
    TwinOrigin,
    TwinStatus,
)
from sync.models.claims import claim
from sync.services.produce import Produced, queue_replica, store_replicas
from sync.services.receive import receive_event
from tests.connections.peers import make_paired


@pytest.fixture
def connection(node):
    return make_paired()


def twin_with_events(connection, count, **twin_fields):
    twin = Twin.objects.create(
        connection=connection, origin=TwinOrigin.LOCAL, local_request_id=None, **twin_fields
    )
    events = [
        SyncEvent.objects.create(connection=connection, twin=twin, seq=n, replica={"n": n})
        for n in range(1, count + 1)
    ]
    return twin, events


def take(limit=50):
    return claim(
        SyncEvent.objects.sendable(),
        limit,
        SyncEvent.LEASE,
        order_by=("next_try_at", "id"),
        state=EventState.IN_PROGRESS,
    )


def test_only_the_oldest_unsent_event_of_each_twin_is_sendable(connection):
    _, first = twin_with_events(connection, 3)
    _, second = twin_with_events(connection, 2)
    assert {e.pk for e in take()} == {first[0].pk, second[0].pk}


def test_a_claimed_event_is_not_claimed_again_until_its_lease_ends(connection):
    _, events = twin_with_events(connection, 2)
    assert [e.pk for e in take()] == [events[0].pk]
    assert take() == []  # the first is held; the second waits behind it
    SyncEvent.objects.filter(pk=events[0].pk).update(lease_until=timezone.now())
    assert [e.pk for e in take()] == [events[0].pk]


def test_a_larger_claim_holds_its_rows_longer_so_each_keeps_the_same_time(connection):
    from sync.models.claims import LEASE_COVERS

    for _ in range(LEASE_COVERS + 1):
        twin_with_events(connection, 1)
    before = timezone.now()
    small = take(limit=LEASE_COVERS)
    assert len(small) == LEASE_COVERS
    assert before + SyncEvent.LEASE <= small[0].lease_until < before + 2 * SyncEvent.LEASE
    SyncEvent.objects.update(lease_until=None, lease_token=None, state=EventState.QUEUED)
    large = take(limit=LEASE_COVERS + 1)
    assert len(large) == LEASE_COVERS + 1
    assert large[0].lease_until >= before + 2 * SyncEvent.LEASE  # two leases, end to end


def test_once_an_event_is_sent_the_next_one_of_its_twin_may_go(connection):
    _, events = twin_with_events(connection, 2)
    take()
    SyncEvent.objects.filter(pk=events[0].pk).update(state=EventState.SENT)
    assert [e.pk for e in take()] == [events[1].pk]


def test_an_event_waiting_to_be_retried_holds_back_only_its_own_twin(connection):
    _, failing = twin_with_events(connection, 2)
    _, other = twin_with_events(connection, 1)
    SyncEvent.objects.filter(pk=failing[0].pk).update(
        next_try_at=timezone.now() + timedelta(minutes=5)
    )
    assert [e.pk for e in take()] == [other[0].pk]


def test_events_of_a_blocked_twin_wait(connection):
    twin_with_events(connection, 1, status=TwinStatus.BLOCKED)
    assert take() == []


@pytest.mark.parametrize(
    "fields", [{"status": "deactivated"}, {"status": "error"}, {"remote_status": "deactivated"}]
)
def test_events_of_a_connection_not_active_on_both_sides_stay_queued(node, fields):
    connection = make_paired(**fields)
    twin_with_events(connection, 1)
    assert take() == []


def test_an_unchanged_replica_makes_no_event(connection):
    twin = Twin.objects.create(
        connection=connection, origin=TwinOrigin.LOCAL, local_request_id=1, baseline={"a": 1}
    )
    assert queue_replica(twin, {"a": 1}, seen_dirty_count=0) is None
    assert not SyncEvent.objects.exists()


def test_a_new_replica_rises_the_seq_and_supersedes_what_was_not_sent(connection):
    twin = Twin.objects.create(connection=connection, origin=TwinOrigin.LOCAL, local_request_id=1)
    first = queue_replica(twin, {"a": 1}, seen_dirty_count=0)
    second = queue_replica(twin, {"a": 2}, seen_dirty_count=0)
    first.refresh_from_db()
    twin.refresh_from_db()
    assert (first.seq, second.seq) == (1, 2)
    assert first.state == EventState.SUPERSEDED
    assert second.previous == {"a": 1}
    assert twin.baseline == {"a": 2}
    assert twin.last_seq_sent == 2


def test_a_twin_marked_again_while_its_request_was_read_stays_dirty(connection):
    twin = Twin.objects.create(
        connection=connection, origin=TwinOrigin.LOCAL, local_request_id=1, dirty=True
    )
    Twin.objects.filter(pk=twin.pk).mark_dirty()  # another webhook meanwhile
    queue_replica(twin, {"a": 1}, seen_dirty_count=0)
    twin.refresh_from_db()
    assert twin.dirty is True


def test_a_batch_of_replicas_is_stored_as_each_would_be_alone(connection):
    same = Twin.objects.create(
        connection=connection, origin=TwinOrigin.LOCAL, local_request_id=1, baseline={"a": 1}
    )
    sent_before = Twin.objects.create(
        connection=connection, origin=TwinOrigin.LOCAL, local_request_id=2, dirty=True
    )
    older = queue_replica(sent_before, {"b": 1}, seen_dirty_count=None)
    fresh = Twin.objects.create(
        connection=connection, origin=TwinOrigin.LOCAL, local_request_id=3, dirty=True
    )
    Twin.objects.filter(pk=fresh.pk).mark_dirty()  # marked again while it was read
    events = store_replicas(
        [
            Produced(same, {"a": 1}, 0),
            Produced(sent_before, {"b": 2}, None),
            Produced(Twin.objects.get(pk=fresh.pk), {"c": 1}, 0),  # read before the mark
        ]
    )
    assert events[0] is None
    assert (events[1].seq, events[1].previous) == (2, {"b": 1})
    assert (events[2].seq, events[2].previous) == (1, None)
    older.refresh_from_db()
    assert older.state == EventState.SUPERSEDED
    twins = {t.local_request_id: t for t in Twin.objects.all()}
    assert [twins[i].baseline for i in (1, 2, 3)] == [{"a": 1}, {"b": 2}, {"c": 1}]
    assert [twins[i].last_seq_sent for i in (1, 2, 3)] == [0, 2, 1]
    assert twins[3].dirty is True  # its request changed again: read once more
    assert not any(t.lease_token for t in twins.values())


def body(twin_id, seq, event=None):
    import uuid

    return {
        "protocol": 1,
        "event": str(event or uuid.uuid4()),
        "twin": "1",
        "twin_id": str(twin_id),
        "seq": seq,
        "replica": {"summary": f"state {seq}"},
    }


def test_the_receiver_applies_only_above_the_last_seq_it_applied(connection, pair):
    # `pair` gives a side whose Xurrent can take the writes.
    import uuid

    side = pair.b
    twin_id = uuid.uuid4()
    receive_event(side.connection, body(twin_id, 1))
    receive_event(side.connection, body(twin_id, 3))
    side.apply()
    twin = Twin.objects.get(connection=side.connection, twin_id=twin_id)
    states = dict(twin.inbound_events.values_list("seq", "state"))
    assert states == {1: InboundState.SUPERSEDED, 3: InboundState.APPLIED}
    assert twin.last_seq_applied == 3
    assert side.xurrent.all_requests()[0]["subject"] == "state 3"
    late = receive_event(side.connection, body(twin_id, 2))
    assert late["state"] == "superseded"
    assert len(side.xurrent.all_requests()) == 1
