"""Private pull, the public side: GET /api/v1/connections/<id>/sync/?after=N (node token)
serves the events waiting for a peer that cannot be called, and the cursors they take."""

from datetime import timedelta

import pytest
from django.utils import timezone

from sync.models import EventState, PullFeed, SyncEvent, Twin, TwinOrigin, TwinStatus
from sync.services import feed
from sync.services.produce import queue_replica
from sync.services.scope import close_twin
from sync.services.send import send_events
from tests.connections.peers import make_paired, peer_token


@pytest.fixture
def connection(node):
    """The public side of a connection whose peer gave no URL (a private network)."""
    return make_paired(remote_url="")


@pytest.fixture
def twin(connection):
    return Twin.objects.create(connection=connection, origin=TwinOrigin.LOCAL, local_request_id=7)


def pull(client, connection, after="0", **headers):
    query = "" if after is None else f"?after={after}"
    return client.get(
        f"/api/v1/connections/{connection.id}/sync/{query}",
        HTTP_AUTHORIZATION=f"Bearer {peer_token(connection)}",
        **headers,
    )


def another_twin(connection, request_id: int) -> Twin:
    return Twin.objects.create(
        connection=connection, origin=TwinOrigin.LOCAL, local_request_id=request_id
    )


def queue(twin, n: int):
    """`n` states of the twin's request, queued as the producer does."""
    return [queue_replica(twin, {"summary": f"state {i}"}, seen_dirty_count=None) for i in range(n)]


# --- cursor allocation -------------------------------------------------------------------------


def test_events_for_a_peer_without_a_url_take_consecutive_cursors_per_connection(connection, twin):
    other = make_paired(name="Other", remote_url="")
    other_twin = Twin.objects.create(connection=other, origin=TwinOrigin.LOCAL, local_request_id=8)
    first = queue(twin, 2)
    elsewhere = queue(other_twin, 1)
    closing = close_twin(Twin.objects.get(pk=twin.pk), tell_peer=True)
    assert [e.pull_cursor for e in first] == [1, 2]
    assert elsewhere[0].pull_cursor == 1  # every connection counts on its own
    assert closing.pull_cursor == 3  # the unexalate event takes its place too
    assert PullFeed.objects.get(connection=connection).last_cursor == 3


def test_events_for_a_peer_that_can_be_called_take_no_cursor_and_are_pushed(node):
    connection = make_paired()  # it has the peer's URL
    twin = Twin.objects.create(connection=connection, origin=TwinOrigin.LOCAL, local_request_id=7)
    (event,) = queue(twin, 1)
    assert event.pull_cursor is None
    assert not PullFeed.objects.exists()
    assert SyncEvent.objects.sendable().filter(pk=event.pk).exists()


def test_events_waiting_for_a_pull_are_never_pushed(connection, twin):
    queue(twin, 1)
    queue(another_twin(connection, 8), 1)
    assert not SyncEvent.objects.sendable().exists()
    assert send_events().attempted == 0
    assert set(SyncEvent.objects.values_list("state", flat=True)) == {EventState.QUEUED}


def test_a_cursor_is_taken_inside_the_events_transaction(connection, twin):
    """A cursor given to an event whose transaction rolled back is never seen by the peer:
    the counter goes back with it, so no later cursor can commit below a served one."""
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        queue(twin, 1)
        raise RuntimeError("rolled back")
    (event,) = queue(twin, 1)
    assert event.pull_cursor == 1


# --- the pull ----------------------------------------------------------------------------------


def test_a_pull_serves_the_waiting_events_in_cursor_order_with_their_bodies(
    client, connection, twin
):
    events = queue(twin, 1) + queue(another_twin(connection, 8), 1)
    response = pull(client, connection)
    assert response.status_code == 200
    body = response.json()
    assert body["protocol"] == 1
    assert [e["cursor"] for e in body["events"]] == [1, 2]
    assert [e["event"] for e in body["events"]] == [str(e.uuid) for e in events]
    first = body["events"][0]
    assert first["twin_id"] == str(twin.twin_id)
    assert first["twin"] == "7"
    assert first["seq"] == 1
    assert first["replica"] == {"summary": "state 0"}
    assert body["cursor"] == 2
    assert body["more"] is False


def test_a_pull_after_a_cursor_serves_only_the_later_events(client, connection, twin):
    queue(twin, 3)
    body = pull(client, connection, after="2").json()
    assert [e["cursor"] for e in body["events"]] == [3]
    assert pull(client, connection, after="3").json() == {
        "protocol": 1,
        "events": [],
        "cursor": 3,
        "more": False,
    }


def test_asking_after_a_cursor_marks_the_events_up_to_it_delivered(client, connection, twin):
    queue(twin, 1)
    queue(another_twin(connection, 8), 1)
    pull(client, connection, after="0")
    assert set(SyncEvent.objects.values_list("state", flat=True)) == {EventState.QUEUED}
    pull(client, connection, after="1")
    states = dict(SyncEvent.objects.values_list("pull_cursor", "state"))
    assert states == {1: EventState.SENT, 2: EventState.QUEUED}
    assert SyncEvent.objects.get(pull_cursor=1).sent_at is not None


def test_the_ack_of_a_pulled_event_settles_it(client, connection, twin):
    (event,) = queue(twin, 1)
    pull(client, connection)
    body = {"protocol": 1, "event": str(event.uuid), "state": "applied", "request_id": "9001"}
    response = client.post(
        f"/api/v1/connections/{connection.id}/sync/ack/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {peer_token(connection)}",
    )
    assert response.status_code == 200
    event.refresh_from_db()
    assert event.state == EventState.APPLIED
    assert Twin.objects.get(pk=twin.pk).remote_request_id == "9001"


def test_an_event_superseded_before_it_was_pulled_is_left_out_but_passed(client, connection, twin):
    twin.refresh_from_db()
    SyncEvent.objects.filter(pk=queue(twin, 1)[0].pk).update(state=EventState.SUPERSEDED)
    body = pull(client, connection).json()
    assert body["events"] == []
    assert body["cursor"] == 1


def test_a_held_twins_event_waits_and_the_cursor_stays_below_it(client, connection, twin):
    queue(twin, 1)
    other = Twin.objects.create(connection=connection, origin=TwinOrigin.LOCAL, local_request_id=9)
    queue(other, 1)
    Twin.objects.filter(pk=twin.pk).update(status=TwinStatus.BLOCKED)
    body = pull(client, connection).json()
    assert [e["cursor"] for e in body["events"]] == [2]
    assert body["cursor"] == 0  # the blocked twin's event is served once it is released
    Twin.objects.filter(pk=twin.pk).update(status=TwinStatus.OPEN)
    body = pull(client, connection).json()
    assert [e["cursor"] for e in body["events"]] == [1, 2]
    assert body["cursor"] == 2


def test_a_long_feed_is_served_in_pages(client, connection, twin, monkeypatch):
    monkeypatch.setattr(feed, "PAGE", 2)
    for n in range(5):
        t = Twin.objects.create(connection=connection, origin=TwinOrigin.LOCAL, local_request_id=n)
        queue(t, 1)
    first = pull(client, connection).json()
    assert ([e["cursor"] for e in first["events"]], first["cursor"], first["more"]) == (
        [1, 2],
        2,
        True,
    )
    last = pull(client, connection, after="4").json()
    assert (last["cursor"], last["more"]) == (5, False)


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("after", ["abc", "-1", "", "1.5", "9" * 30])
def test_a_bad_after_is_refused_with_400_and_changes_nothing(client, connection, twin, after):
    queue(twin, 1)
    response = pull(client, connection, after=after)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_request"
    assert "after" in body["errors"]
    assert SyncEvent.objects.get().state == EventState.QUEUED


def test_a_pull_where_events_are_pushed_finds_nothing_and_changes_nothing(client, node):
    connection = make_paired()  # this side has the peer's URL
    twin = Twin.objects.create(connection=connection, origin=TwinOrigin.LOCAL, local_request_id=7)
    queue(twin, 1)
    body = pull(client, connection, after="5").json()
    assert (body["events"], body["cursor"], body["more"]) == ([], 5, False)
    assert SyncEvent.objects.count() == 1  # no fresh state queued
    assert SyncEvent.objects.get().state == EventState.QUEUED


def test_a_pull_without_after_starts_from_the_beginning(client, connection, twin):
    queue(twin, 1)
    assert [e["cursor"] for e in pull(client, connection, after=None).json()["events"]] == [1]


@pytest.mark.parametrize("status", ["deactivated", "pending"])
def test_a_pull_on_an_inactive_connection_answers_409_connection_inactive(client, node, status):
    connection = make_paired(status=status, remote_url="")
    response = pull(client, connection)
    assert response.status_code == 409
    assert response.json()["code"] == "connection_inactive"


def test_a_pull_without_a_token_is_refused(client, connection, twin):
    queue(twin, 1)
    response = client.get(f"/api/v1/connections/{connection.id}/sync/?after=0")
    assert response.status_code == 401
    assert SyncEvent.objects.get().state == EventState.QUEUED


def test_a_pull_signed_with_another_connections_key_is_refused(client, connection, twin):
    other = make_paired(name="Other", remote_url="")
    response = client.get(
        f"/api/v1/connections/{connection.id}/sync/?after=0",
        HTTP_AUTHORIZATION=f"Bearer {peer_token(other, connection_id=str(connection.id))}",
    )
    assert response.status_code in (401, 403)
    assert "events" not in response.json()


def test_a_pull_for_an_unknown_connection_is_refused(client, connection):
    import uuid

    missing = uuid.uuid4()
    response = client.get(
        f"/api/v1/connections/{missing}/sync/?after=0",
        HTTP_AUTHORIZATION=f"Bearer {peer_token(connection, connection_id=str(missing))}",
    )
    assert response.status_code in (401, 403, 404)
    assert set(response.json()) >= {"code", "detail"}


# --- retention ---------------------------------------------------------------------------------


def finish(events, *, days_ago: float):
    SyncEvent.objects.filter(pk__in=[e.pk for e in events]).update(
        state=EventState.APPLIED, finished_at=timezone.now() - timedelta(days=days_ago)
    )


def test_events_finished_over_seven_days_ago_leave_the_feed_but_not_a_waiting_one(connection, twin):
    old = queue(twin, 2)
    waiting = queue(another_twin(connection, 3), 1)
    later = queue(twin, 1)
    finish(old, days_ago=8)
    finish(later, days_ago=9)
    assert feed.expire_old_events() == 1
    # The window stops below the event still waiting for its result (cursor 3).
    assert PullFeed.objects.get(connection=connection).expired_through == 2
    finish(waiting, days_ago=1)
    feed.expire_old_events()
    assert PullFeed.objects.get(connection=connection).expired_through == 2
    finish(waiting, days_ago=8)
    feed.expire_old_events()
    assert PullFeed.objects.get(connection=connection).expired_through == 4
    assert SyncEvent.objects.count() == 4  # the history stays


def test_an_expired_cursor_gets_410_and_a_fresh_state_of_every_open_twin(client, connection, twin):
    old = queue(twin, 2)
    closed = Twin.objects.create(
        connection=connection,
        origin="local",
        local_request_id=4,
        status=TwinStatus.CLOSED,
        baseline={"summary": "closed"},
    )
    finish(old, days_ago=8)
    feed.expire_old_events()
    response = pull(client, connection, after="1")
    assert response.status_code == 410
    body = response.json()
    assert body["code"] == "cursor_expired"
    assert body["cursor"] == 2
    assert body["detail"]
    fresh = SyncEvent.objects.get(pull_cursor=3)
    assert fresh.twin_id == twin.pk
    assert fresh.replica == {"summary": "state 1"}
    assert fresh.previous is None
    assert fresh.seq == 3
    assert not closed.events.exists()
    again = pull(client, connection, after="2").json()
    assert [e["cursor"] for e in again["events"]] == [3]


def test_a_cursor_beyond_the_feed_is_expired_too(client, connection, twin):
    queue(twin, 1)
    response = pull(client, connection, after="50")
    assert response.status_code == 410
    assert response.json()["cursor"] == 0


# --- status reports handed over at the pull ----------------------------------------------------


def test_a_pull_hands_over_this_sides_newest_status_report_and_delivers_it(
    client, connection, twin
):
    from connections.models import PeerNotification
    from connections.services import actions

    assert "side" not in pull(client, connection).json()  # nothing reported yet
    actions.deactivate_connection(connection, reason="Maintenance window")
    response = pull(client, connection)
    assert response.status_code == 409
    assert response.json()["code"] == "connection_inactive"
    side = response.json()["side"]
    assert (side["status"], side["reason"]) == ("deactivated", "Maintenance window")
    assert PeerNotification.objects.get().state == "delivered"
    actions.activate_connection(connection)
    queue(twin, 1)
    answer = pull(client, connection).json()
    assert answer["side"]["status"] == "active"
    assert len(answer["events"]) == 1
    assert answer["side"]["at"] > side["at"]
