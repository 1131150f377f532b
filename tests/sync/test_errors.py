"""Sync errors: what blocks a twin, what is retried by itself, Retry and Resolve, and
writes whose answer was lost."""

from django.utils import timezone

from sync.models import (
    ErrorKind,
    EventState,
    InboundEvent,
    InboundState,
    SyncError,
    SyncEvent,
    Twin,
    TwinStatus,
)
from sync.services.errors import resolve_error, retry_twin
from tests.sync.engine import INCOMING, OUTGOING

BROKEN_INCOMING = (
    INCOMING + 'if replica.summary == "boom":\n    entity.summary = replica.nothing["x"]\n'
)


def start(pair, subject, **fields):
    request = pair.a.xurrent.human_creates(
        subject=subject, category="incident", impact="low", **fields
    )
    pair.a.notice(request["id"])
    return request


def time_passes():
    """Every retry that waits for its time comes due now."""
    now = timezone.now()
    InboundEvent.objects.update(next_try_at=now)
    SyncEvent.objects.filter(state="queued").update(next_try_at=now)
    Twin.objects.update(next_try_at=None)


def test_an_incoming_script_error_holds_its_twin_names_the_line_and_others_flow(pair):
    pair.b.rules(OUTGOING, BROKEN_INCOMING)
    pair.a.trigger()
    start(pair, "boom")
    start(pair, "fine")
    pair.sync()

    assert [r["subject"] for r in pair.b.xurrent.all_requests()] == ["fine"]
    error = SyncError.objects.get(connection=pair.b.connection)
    assert error.kind == ErrorKind.SCRIPT
    assert error.line == INCOMING.count("\n") + 2
    assert "TypeError" in error.message or "NoneType" in error.message
    assert error.blocking
    assert error.twin.status == TwinStatus.BLOCKED
    # The sender shows it read-only; it is retried on B, where it happened.
    shown = SyncError.objects.get(connection=pair.a.connection)
    assert shown.remote and not shown.blocking
    assert shown.line == error.line
    assert SyncEvent.objects.get(twin__connection=pair.a.connection, twin=shown.twin).state == (
        EventState.FAILED
    )

    # A later change of the same request waits behind the block.
    request_id = shown.twin.local_request_id
    pair.a.xurrent.human_updates(request_id, subject="boom again")
    pair.a.notice(request_id)
    pair.sync()
    assert len(pair.b.xurrent.all_requests()) == 1

    # Fixed and retried: the newest state arrives, the older event is superseded.
    pair.b.rules(OUTGOING, INCOMING)
    retry_twin(error.twin)
    pair.sync()
    assert sorted(r["subject"] for r in pair.b.xurrent.all_requests()) == ["boom again", "fine"]
    states = list(error.twin.inbound_events.order_by("seq").values_list("state", flat=True))
    assert states == [InboundState.SUPERSEDED, InboundState.APPLIED]
    assert not SyncError.objects.filter(resolved_at__isnull=True).exists()
    assert SyncEvent.objects.filter(state=EventState.APPLIED).count() == 2


def test_a_value_xurrent_refuses_blocks_the_twin_with_its_message(pair):
    pair.b.rules(OUTGOING, INCOMING.replace('entity.priority = "low"', 'entity.priority = "huge"'))
    pair.a.rules(OUTGOING.replace("replica.priority = entity.priority\n", ""), INCOMING)
    pair.a.trigger()
    start(pair, "odd")
    pair.sync()
    error = SyncError.objects.get(connection=pair.b.connection)
    assert error.kind == ErrorKind.XURRENT
    assert "Impact" in error.message or "impact" in error.message
    assert error.twin.status == TwinStatus.BLOCKED
    assert pair.b.xurrent.all_requests() == []


def test_a_server_error_is_retried_by_itself_without_blocking(pair):
    pair.a.trigger()
    start(pair, "flaky")
    pair.b.xurrent.fail_next("create", "server_error")
    pair.sync()
    error = SyncError.objects.get(connection=pair.b.connection, resolved_at__isnull=True)
    assert not error.blocking
    assert error.next_try_at is not None
    assert "tried again" in error.message
    time_passes()
    pair.sync()
    assert [r["subject"] for r in pair.b.xurrent.all_requests()] == ["flaky"]
    error.refresh_from_db()
    assert error.resolved_at is not None


def test_an_error_seen_ten_times_blocks_the_twin(pair):
    pair.a.trigger()
    start(pair, "always failing")
    pair.b.xurrent.fail_next("create", "server_error", count=20)
    for _ in range(12):
        pair.sync()
        time_passes()
    error = SyncError.objects.get(connection=pair.b.connection)
    assert error.attempts == 10
    assert error.blocking
    assert error.twin.status == TwinStatus.BLOCKED
    assert pair.b.xurrent.calls["create"] == 10


def test_a_create_whose_answer_was_lost_is_found_by_its_source_id_not_made_twice(pair):
    pair.a.trigger()
    start(pair, "once only", note="the description")
    pair.b.xurrent.fail_next("create", "unreachable", store=True)
    pair.sync()
    time_passes()
    pair.sync()
    copies = pair.b.xurrent.all_requests()
    assert [r["subject"] for r in copies] == ["once only"]
    assert pair.b.xurrent.texts(copies[0]["id"]) == ["the description"]
    twin = Twin.objects.get(connection=pair.b.connection)
    assert twin.local_request_id == copies[0]["id"]
    assert twin.status == TwinStatus.OPEN


def test_a_note_whose_answer_was_lost_is_found_again_not_added_twice(pair):
    pair.a.trigger()
    request = start(pair, "notes", note="the description")
    pair.sync()
    pair.a.xurrent.human_adds_note(request["id"], "a comment")
    pair.a.notice(request["id"])
    pair.b.xurrent.fail_next("add_note", "unreachable", store=True)
    pair.sync()
    time_passes()
    pair.sync()
    copy = pair.b.xurrent.all_requests()[0]
    assert pair.b.xurrent.texts(copy["id"]) == ["the description", "a comment"]
    assert pair.b.xurrent.writes["add_note"] == 1


def test_resolve_releases_the_twin_and_the_next_change_flows(pair):
    pair.b.rules(OUTGOING, BROKEN_INCOMING)
    pair.a.trigger()
    request = start(pair, "boom")
    pair.sync()
    error = SyncError.objects.get(connection=pair.b.connection)
    pair.b.rules(OUTGOING, INCOMING)
    resolve_error(error, note="Fixed the script by hand.")
    error.twin.refresh_from_db()
    assert error.twin.status == TwinStatus.CREATING  # no request made yet: it waits for one
    pair.a.xurrent.human_updates(request["id"], subject="after the fix")
    pair.a.notice(request["id"])
    pair.sync()
    assert [r["subject"] for r in pair.b.xurrent.all_requests()] == ["after the fix"]
    assert SyncEvent.objects.filter(twin__connection=pair.a.connection).first().state in (
        EventState.FAILED,
        EventState.SUPERSEDED,
    )


def test_an_outgoing_script_error_blocks_the_twin_before_anything_is_sent(pair):
    pair.a.rules("replica.summary = entity.summary\nreplica.x = 1 / 0\n", INCOMING)
    pair.a.trigger()
    start(pair, "never sent")
    pair.sync()
    error = SyncError.objects.get(connection=pair.a.connection)
    assert error.line == 2
    assert "ZeroDivisionError" in error.message
    assert error.twin.status == TwinStatus.BLOCKED
    assert not SyncEvent.objects.exists()


def test_a_rate_limit_pauses_every_worker_of_the_account_until_retry_after(pair):
    from datetime import timedelta

    from sync.models import PollState
    from sync.services.gateway import use_gateway
    from sync.services.worker import run_sync_round

    pair.a.trigger()
    start(pair, "later")
    until = timezone.now() + timedelta(minutes=5)
    pair.a.xurrent.fail_next("get", "rate_limited", retry_at=until)
    pair.a.produce()
    assert PollState.account_paused()
    error = SyncError.objects.get()
    assert not error.blocking and error.next_try_at >= until
    with use_gateway(pair.a.xurrent):
        report = run_sync_round(poll_every=3600)
    assert report.produced == 0 and pair.a.xurrent.calls["get"] == 1
    PollState.objects.update(paused_until=timezone.now())
    time_passes()
    with use_gateway(pair.a.xurrent):
        assert run_sync_round(poll_every=3600).produced == 1
