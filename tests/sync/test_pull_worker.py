"""Private pull, the private side: its worker pulls the events waiting for it, keeps them
in its inbox, applies them and acknowledges each result; its own events go by push.

In-process on a local connection (both sides on this node, each with its own Xurrent):
A's side treats its peer as one that cannot be called, B's side pulls from A.
"""

import pytest

from nodes.models import GeneralSettings
from sync.models import (
    EventState,
    InboundEvent,
    InboundState,
    PullPosition,
    SyncError,
    SyncEvent,
    Twin,
    TwinStatus,
)
from sync.services import feed, pull
from sync.services.gateway import use_gateway
from sync.services.worker import run_sync_round
from tests.sync.engine import Pair


@pytest.fixture
def private(pair, monkeypatch) -> Pair:
    """B is in a private network: A keeps B's events for the pull."""
    monkeypatch.setattr(feed, "peer_pulls", lambda c: c.pk == pair.a.connection.pk)
    pair.a.trigger()
    return pair


def b_pulls(pair: Pair) -> int:
    return pull.pull_events(connection=pair.b.connection)


def sync_with_pull(pair: Pair, rounds: int = 10) -> None:
    """Both workers until nothing is left: as Pair.sync, and B pulls from A."""
    for _ in range(rounds):
        work = 0
        for side in (pair.a, pair.b):
            work += side.produce().events
            work += side.send().attempted
            if side is pair.b:
                work += pull.pull_events(connection=pair.b.connection, force=True)
            work += side.apply().attempted
            work += side.acks()
        if not work:
            return
    raise AssertionError("still busy")


def created_on_a(pair: Pair, subject: str = "Printer on fire") -> dict:
    request = pair.a.xurrent.human_creates(subject=subject, category="incident", impact="high")
    pair.a.notice(request["id"])
    pair.a.produce()
    return request


def test_a_private_side_pulls_applies_and_acknowledges_the_waiting_event(private):
    created_on_a(private)
    event = SyncEvent.objects.get(connection=private.a.connection)
    assert event.pull_cursor == 1
    assert private.a.send().attempted == 0  # never pushed to a side that cannot be called

    assert b_pulls(private) == 1
    inbound = InboundEvent.objects.get(connection=private.b.connection)
    assert (inbound.uuid, inbound.seq) == (event.uuid, 1)
    assert PullPosition.objects.get(connection=private.b.connection).after == 1

    assert private.b.apply().applied == 1
    assert private.b.acks() == 1
    copy = private.b.xurrent.all_requests()[0]
    assert copy["subject"] == "Printer on fire"
    event.refresh_from_db()
    assert event.state == EventState.APPLIED
    twin_a = Twin.objects.get(connection=private.a.connection)
    assert twin_a.remote_request_id == str(copy["id"])


def test_a_pull_is_not_repeated_before_its_interval_and_a_repeat_is_stored_once(private):
    created_on_a(private)
    assert b_pulls(private) == 1
    assert b_pulls(private) == 0  # not due yet (SYNC_PULL_SECONDS)
    PullPosition.objects.update(after=0)  # as if the cursor had not been saved
    assert pull.pull_events(connection=private.b.connection, force=True) == 0
    assert InboundEvent.objects.filter(connection=private.b.connection).count() == 1
    assert PullPosition.objects.get().after == 1


def test_edits_cross_both_ways_with_one_side_pulling_and_nothing_loops(private):
    request = created_on_a(private)
    sync_with_pull(private)
    copy = private.b.xurrent.all_requests()[0]

    private.a.xurrent.human_updates(request["id"], subject="Printer still on fire")
    private.b.xurrent.human_adds_note(copy["id"], "Extinguisher on its way")
    private.a.notice(request["id"])
    private.b.notice(copy["id"])
    sync_with_pull(private)
    writes = (sum(private.a.xurrent.writes.values()), sum(private.b.xurrent.writes.values()))

    assert private.b.xurrent.all_requests()[0]["subject"] == "Printer still on fire"
    assert "Extinguisher on its way" in private.a.xurrent.texts(request["id"])
    # B's own events went out by push, A's waited for the pull: each side's own kind.
    assert SyncEvent.objects.filter(connection=private.b.connection, pull_cursor=None).exists()
    assert not SyncEvent.objects.filter(connection=private.a.connection, pull_cursor=None).exists()
    assert set(SyncEvent.objects.values_list("state", flat=True)) <= {"applied", "superseded"}

    private.a.notice(request["id"])
    private.b.notice(copy["id"])
    sync_with_pull(private)
    assert (
        sum(private.a.xurrent.writes.values()),
        sum(private.b.xurrent.writes.values()),
    ) == writes


def test_an_event_already_applied_is_acknowledged_superseded_when_pulled_again(private):
    created_on_a(private)
    sync_with_pull(private)
    event = SyncEvent.objects.get(connection=private.a.connection)
    twin_b = Twin.objects.get(connection=private.b.connection)
    InboundEvent.objects.all().delete()  # the inbox lost it; the twin remembers its seq
    SyncEvent.objects.filter(pk=event.pk).update(state=EventState.SENT, finished_at=None)
    PullPosition.objects.update(after=0)
    assert pull.pull_events(connection=private.b.connection, force=True) == 1
    inbound = InboundEvent.objects.get()
    assert (inbound.state, inbound.ack_pending) == (InboundState.SUPERSEDED, True)
    assert private.b.acks() == 1
    event.refresh_from_db()
    assert event.state == EventState.SUPERSEDED
    assert twin_b.last_seq_applied == 1


def test_an_event_for_a_twin_closed_here_is_answered_at_once(private):
    created_on_a(private)
    sync_with_pull(private)
    twin_b = Twin.objects.get(connection=private.b.connection)
    Twin.objects.filter(pk=twin_b.pk).update(status=TwinStatus.CLOSED)
    request = private.a.xurrent.all_requests()[0]
    private.a.xurrent.human_updates(request["id"], subject="changed after the close")
    private.a.notice(request["id"])
    private.a.produce()
    late = SyncEvent.objects.filter(connection=private.a.connection).latest("seq")
    pull.pull_events(connection=private.b.connection, force=True)
    late.refresh_from_db()
    assert late.state == EventState.SUPERSEDED
    assert PullPosition.objects.get().after == late.pull_cursor


def test_an_expired_cursor_starts_again_where_the_other_side_says(private):
    created_on_a(private)
    sync_with_pull(private)
    PullPosition.objects.update(after=40)  # beyond A's feed: A queues a fresh state
    assert pull.pull_events(connection=private.b.connection, force=True) == 0
    assert PullPosition.objects.get().after == 0
    fresh = SyncEvent.objects.filter(connection=private.a.connection).latest("seq")
    assert (fresh.seq, fresh.previous) == (2, None)
    writes = sum(private.b.xurrent.writes.values())
    sync_with_pull(private)
    fresh.refresh_from_db()
    assert fresh.state == EventState.APPLIED
    assert sum(private.b.xurrent.writes.values()) - writes <= 1  # same state: little to write


def test_an_unreachable_peer_is_an_error_retried_later(private, monkeypatch):
    def down(*args, **kwargs):
        from nodes.client import NodeError

        raise NodeError("unreachable", "Could not connect to https://a.example.")

    monkeypatch.setattr(pull, "_get", down)
    assert b_pulls(private) == 0
    error = SyncError.objects.get(connection=private.b.connection)
    assert error.place == "pull"
    assert error.next_try_at is not None
    position = PullPosition.objects.get()
    assert position.failures == 1
    assert position.after == 0
    monkeypatch.undo()
    private.a.trigger()  # monkeypatch.undo dropped the fixture's patch: put it back
    monkeypatch.setattr(feed, "peer_pulls", lambda c: c.pk == private.a.connection.pk)
    created_on_a(private)
    assert pull.pull_events(connection=private.b.connection, force=True) == 1
    error.refresh_from_db()
    assert error.resolved_at is not None


def test_a_public_node_does_not_pull(private):
    created_on_a(private)
    assert pull.pull_events() == 0
    assert not PullPosition.objects.exists()


def test_a_private_nodes_round_pulls_applies_and_acks(private):
    GeneralSettings.objects.update(public=False)
    # A local connection has no URL of its own; B's side names A's so it pulls from it.
    type(private.b.connection).objects.filter(pk=private.b.connection.pk).update(
        remote_url="https://a.example"
    )
    created_on_a(private)
    with use_gateway(private.b.xurrent):
        reports = [run_sync_round(poll_every=3600) for _ in range(3)]
    assert reports[0].pulled == 1
    assert reports[0].applied == 1
    assert private.b.xurrent.all_requests()[0]["subject"] == "Printer on fire"
    assert SyncEvent.objects.get(connection=private.a.connection).state == EventState.APPLIED


def test_the_pull_asks_the_peer_with_its_cursor_and_a_node_token(node, monkeypatch):
    from tests.connections.peers import make_paired

    GeneralSettings.objects.update(public=False)
    connection = make_paired(role="destination", remote_url="https://public.example")
    PullPosition.objects.create(connection=connection, after=7)
    calls = []

    def request(method, base_url, path, **kwargs):
        calls.append((method, base_url, path, kwargs["headers"]["Authorization"]))
        return 200, {"protocol": 1, "events": [], "cursor": 7, "more": False}

    monkeypatch.setattr(pull.client, "request", request)
    assert pull.pull_events() == 0
    ((method, base_url, path, auth),) = calls
    assert (method, base_url) == ("GET", "https://public.example")
    assert path == f"/api/v1/connections/{connection.remote_connection_id}/sync/?after=7"
    assert auth.startswith("Bearer ")


def a_public_peer(monkeypatch, answers: list[tuple[int, dict]]):
    """This node is private and pulls from a public peer that answers `answers` in turn."""
    from tests.connections.peers import make_paired

    GeneralSettings.objects.update(public=False)
    connection = make_paired(role="destination", remote_url="https://public.example")
    monkeypatch.setattr(pull.client, "request", lambda *args, **kwargs: answers.pop(0))
    return connection


def report(status: str, at: str, reason: str = "") -> dict:
    return {"status": status, "reason": reason, "at": at}


def test_the_status_the_peer_hands_over_at_a_pull_is_recorded_and_a_stale_one_ignored(
    node, monkeypatch
):
    empty = {"protocol": 1, "events": [], "cursor": 0, "more": False}
    inactive = {"code": "connection_inactive", "detail": "Deactivated there."}
    connection = a_public_peer(
        monkeypatch,
        [
            (409, {**inactive, "side": report("deactivated", "2026-11-29T10:00:00Z", "Night")}),
            (200, {**empty, "side": report("active", "2026-11-29T10:05:00Z")}),
            (200, {**empty, "side": report("deactivated", "2026-11-29T10:01:00Z")}),
            (200, {**empty, "side": {"status": "on fire"}}),
        ],
    )
    seen = []
    for _ in range(4):
        pull.pull_events(force=True)
        connection.refresh_from_db()
        seen.append((connection.remote_status, connection.status))
    assert seen == [
        ("deactivated", "active"),  # the other side's status; this side stays as it is
        ("active", "active"),
        ("active", "active"),  # an older report than the last one changes nothing
        ("active", "active"),  # neither does one that is not a report
    ]


def test_a_peer_that_no_longer_knows_the_connection_puts_this_side_in_error(node, monkeypatch):
    unknown = {"code": "unknown_connection", "detail": "No such connection here."}
    connection = a_public_peer(monkeypatch, [(401, unknown)])
    pull.pull_events(force=True)
    connection.refresh_from_db()
    assert (connection.status, connection.remote_status) == ("error", "deleted")
    assert connection not in pull.pulling_connections()  # no more pulls from it
