"""What is synced: triggers, exalate and unexalate, bulk exalate, polls and webhook hints."""

import pytest

from sync.models import BulkState, PollState, SyncEvent, Twin, TwinStatus
from sync.services.gateway import use_gateway
from sync.services.scope import (
    ScopeError,
    add_trigger,
    consume_webhook_hints,
    exalate_request,
    parse_query,
    poll_xurrent,
    run_bulk_exalate,
    start_bulk_exalate,
    unexalate_request,
)
from tests.sync.engine import Pair, Side, make_local_pair
from tests.sync.fake_xurrent import FakeXurrent
from xurrent.models import WebhookHint
from xurrent.services import request_digest


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", "Enter a filter"),
        ("category", "field=value"),
        ("sort=id", "cannot be part of a trigger"),
        ("updated_at=>2026-01-01", "cannot be part of a trigger"),
        ("team=1&team=2", "given twice"),
        ("bad name=1", "not a request field"),
    ],
)
def test_a_trigger_query_that_is_not_a_filter_is_refused_with_why(query, words):
    with pytest.raises(ScopeError, match=words):
        parse_query(query)


def test_a_trigger_is_stored_in_xurrents_own_syntax(pair):
    trigger = add_trigger(pair.a.connection, "?category=incident&status=!completed")
    assert trigger.query == "category=incident&status=!completed"
    assert parse_query(trigger.query) == {"category": "incident", "status": "!completed"}


def test_a_request_that_matches_no_trigger_is_not_synced(pair):
    pair.a.trigger("category=incident")
    request = pair.a.xurrent.human_creates(subject="an order", category="order")
    pair.a.notice(request["id"])
    pair.sync()
    assert pair.b.xurrent.all_requests() == []


def test_exalate_syncs_one_request_whatever_the_triggers(pair):
    request = pair.a.xurrent.human_creates(subject="by hand", category="rfc")
    twin = exalate_request(pair.a.connection, request["id"], gateway=pair.a.xurrent)
    assert twin.local_request_id == request["id"]
    pair.sync()
    assert [r["subject"] for r in pair.b.xurrent.all_requests()] == ["by hand"]


def test_exalate_refuses_an_unknown_request_and_a_copy_made_by_the_connection(pair):
    with pytest.raises(ScopeError, match="no request #999"):
        exalate_request(pair.a.connection, 999, gateway=pair.a.xurrent)
    request = pair.a.xurrent.human_creates(subject="original", category="rfc")
    twin = exalate_request(pair.a.connection, request["id"], gateway=pair.a.xurrent)
    pair.sync()
    # The copy on B is in a twin already: exalating it there just syncs it again.
    copy = pair.b.xurrent.all_requests()[0]
    again = exalate_request(pair.b.connection, copy["id"], gateway=pair.b.xurrent)
    assert again.twin_id == twin.twin_id
    # A copy of B's in A's account (sourceID naming a twin) never starts one on A.
    stray = pair.a.xurrent.human_creates(subject="copy", category="rfc", sourceID=str(twin.twin_id))
    with pytest.raises(ScopeError, match="copy of request"):
        exalate_request(pair.a.connection, stray["id"], gateway=pair.a.xurrent)


def test_unexalate_closes_both_sides_and_stops_updates(pair):
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject="v1", category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.sync()
    unexalate_request(pair.a.connection, request["id"])
    pair.sync()
    twins = Twin.objects.order_by("connection__role")
    assert [t.status for t in twins] == [TwinStatus.CLOSED, TwinStatus.CLOSED]

    pair.a.xurrent.human_updates(request["id"], subject="v2")
    pair.a.notice(request["id"])
    pair.sync()
    assert pair.b.xurrent.all_requests()[0]["subject"] == "v1"
    assert Twin.objects.filter(connection=pair.a.connection).count() == 1  # left out


def test_unexalated_on_the_other_side_closes_this_side_at_its_next_event(pair):
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject="v1", category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.sync()
    copy = pair.b.xurrent.all_requests()[0]
    unexalate_request(pair.b.connection, copy["id"])
    pair.a.xurrent.human_updates(request["id"], subject="v2")
    pair.a.notice(request["id"])
    pair.sync()
    assert set(Twin.objects.values_list("status", flat=True)) == {TwinStatus.CLOSED}
    assert pair.b.xurrent.all_requests()[0]["subject"] == "v1"


def test_exalating_again_after_unexalate_starts_a_new_twin(pair):
    request = pair.a.xurrent.human_creates(subject="again", category="rfc")
    first = exalate_request(pair.a.connection, request["id"], gateway=pair.a.xurrent)
    pair.sync()
    unexalate_request(pair.a.connection, request["id"])
    pair.sync()
    second = exalate_request(pair.a.connection, request["id"], gateway=pair.a.xurrent)
    assert second.twin_id != first.twin_id
    pair.sync()
    assert len(pair.b.xurrent.all_requests()) == 2


def test_a_local_connection_on_one_account_makes_one_copy_and_no_echo(node, persistent_sandbox):
    a, b = make_local_pair("Local")
    account = FakeXurrent("shared")
    pair = Pair(Side(a, account), Side(b, account))
    pair.a.rules()
    pair.b.rules()
    pair.a.trigger("category=incident")
    pair.b.trigger("category=incident")
    request = account.human_creates(subject="only once", category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.sync()
    requests = account.all_requests()
    assert [r["subject"] for r in requests] == ["only once", "only once"]
    copy = requests[1]
    # Both triggers match the original: one side took it, the other made the copy.
    started = Twin.objects.get(local_request_id=request["id"]).connection
    other = b if started == a else a
    assert copy["sourceID"] == str(Twin.objects.get(connection=started).twin_id)
    # Both triggers match the copy too, but a copy the connection made never starts a twin.
    pair.b.notice(copy["id"], request["id"])
    pair.a.notice(copy["id"], request["id"])
    assert pair.sync() == 0
    assert len(account.all_requests()) == 2
    assert Twin.objects.count() == 2
    with pytest.raises(ScopeError):
        exalate_request(other, request["id"], gateway=account)
    with pytest.raises(ScopeError):
        exalate_request(started, copy["id"], gateway=account)


def test_bulk_exalate_starts_every_current_match_once_and_counts(pair):
    for n in range(5):
        pair.a.xurrent.human_creates(subject=f"old {n}", category="incident", impact="low")
    pair.a.xurrent.human_creates(subject="not matching", category="rfc")
    pair.a.trigger("category=incident")
    run, started = start_bulk_exalate(pair.a.connection)
    again, started_again = start_bulk_exalate(pair.a.connection)
    assert started and not started_again and again.pk == run.pk
    run = run_bulk_exalate(run, gateway=pair.a.xurrent)
    assert (run.state, run.found, run.exalated, run.skipped) == (BulkState.FINISHED, 5, 5, 0)
    second, _ = start_bulk_exalate(pair.a.connection)
    second = run_bulk_exalate(second, gateway=pair.a.xurrent)
    assert (second.found, second.exalated, second.skipped) == (5, 0, 5)
    pair.sync()
    assert len(pair.b.xurrent.all_requests()) == 5
    assert SyncEvent.objects.count() == 5


def test_bulk_exalate_needs_an_active_trigger(pair):
    with pytest.raises(ScopeError, match="no active trigger"):
        start_bulk_exalate(pair.a.connection)


def test_a_poll_uses_xurrents_clock_and_sees_changes_of_the_same_second(pair):
    pair.a.trigger()
    fake = pair.a.xurrent
    with use_gateway(fake):
        assert poll_xurrent(every=30) == 0  # the first poll only sets the watermark
        state = PollState.account()
        assert state.watermark is not None
        first = fake.human_creates(subject="one", category="incident", impact="low")
        assert poll_xurrent(every=30, force=True) == 1
        # Another change within the same second as the one just seen.
        fake.human_updates(first["id"], subject="one, edited")
        fake.human_creates(subject="two", category="incident", impact="low")
        seen = poll_xurrent(every=30, force=True)
    assert seen == 2
    pair.sync()
    assert sorted(r["subject"] for r in pair.b.xurrent.all_requests()) == ["one, edited", "two"]


def test_a_poll_waits_for_its_interval(pair):
    with use_gateway(pair.a.xurrent):
        poll_xurrent(every=30)
        pair.a.xurrent.human_creates(subject="x", category="incident", impact="low")
        assert poll_xurrent(every=30) == 0
        PollState.request_soon()
        assert poll_xurrent(every=30) == 1


def test_webhook_hints_mark_twins_dirty_and_start_trigger_matches(pair):
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject="hinted", category="incident", impact="low")
    WebhookHint.objects.create(event="request.create", object_id=request["id"], account="a")
    with use_gateway(pair.a.xurrent):
        assert consume_webhook_hints() == 1
    assert not WebhookHint.objects.pending().exists()
    assert Twin.objects.get(connection=pair.a.connection).dirty
    pair.sync()
    assert [r["subject"] for r in pair.b.xurrent.all_requests()] == ["hinted"]


def test_a_bulk_exalate_pressed_on_a_page_is_run_by_the_worker(pair):
    from sync.services.scope import run_waiting_bulk_exalates

    pair.a.xurrent.human_creates(subject="waiting", category="incident", impact="low")
    pair.a.trigger()
    run, _ = start_bulk_exalate(pair.a.connection, by_worker=True)
    assert run.state == BulkState.WAITING
    assert run_waiting_bulk_exalates(gateway=pair.a.xurrent) == 1
    run.refresh_from_db()
    assert (run.state, run.exalated) == (BulkState.FINISHED, 1)
    assert run_waiting_bulk_exalates(gateway=pair.a.xurrent) == 0


# --- the webhooks of this side's own writes --------------------------------------------------


def copied_to_b(pair):
    """A request of A applied on B (no webhook taken yet): B's copy and B's twin."""
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(
        subject="mine", category="incident", impact="low", note="It broke"
    )
    pair.a.notice(request["id"])
    pair.a.produce()
    pair.a.send()
    assert pair.b.apply().applied == 1
    (copy,) = pair.b.xurrent.all_requests()
    return copy, Twin.objects.get(connection=pair.b.connection)


def webhook(side, event: str, request: dict) -> None:
    """A webhook as Xurrent sends it (its payload is the request), taken by the worker."""
    digest = request_digest(request) if event != "request.note-added" else ""
    WebhookHint.objects.create(event=event, object_id=request["id"], account="b", digest=digest)
    with use_gateway(side.xurrent):
        consume_webhook_hints()


def test_the_webhook_of_this_sides_own_write_is_not_read_back(pair):
    copy, twin = copied_to_b(pair)
    assert twin.written_digest == request_digest(copy)
    reads = pair.b.xurrent.calls["get"]
    webhook(pair.b, "request.create", copy)
    twin.refresh_from_db()
    assert not twin.dirty
    assert pair.b.produce().attempted == 0
    assert pair.b.xurrent.calls["get"] == reads


def test_a_webhook_showing_another_content_is_read_back_and_sent(pair):
    copy, twin = copied_to_b(pair)
    edited = pair.b.xurrent.human_updates(copy["id"], subject="mine, edited here")
    webhook(pair.b, "request.create", copy)  # the engine's own write...
    webhook(pair.b, "request.update", edited)  # ...and a person's, after it
    twin.refresh_from_db()
    assert twin.dirty
    assert pair.b.produce().events == 1


def test_a_note_added_is_read_back_even_beside_the_own_writes_webhook(pair):
    copy, twin = copied_to_b(pair)
    pair.b.xurrent.human_adds_note(copy["id"], "Seen here too")
    WebhookHint.objects.create(
        event="request.create", object_id=copy["id"], account="b", digest=request_digest(copy)
    )
    webhook(pair.b, "request.note-added", copy)
    twin.refresh_from_db()
    assert twin.dirty
    assert pair.b.produce().events == 1


def test_once_read_again_the_written_content_no_longer_passes_for_the_own_write(pair):
    """A request changed and then changed back to what the engine wrote is read back."""
    copy, twin = copied_to_b(pair)
    Twin.objects.filter(pk=twin.pk).mark_dirty()
    pair.b.produce()  # read again (a person's change, say)
    twin.refresh_from_db()
    assert twin.written_digest == ""
    webhook(pair.b, "request.update", copy)
    twin.refresh_from_db()
    assert twin.dirty


def test_a_poll_listing_only_the_own_write_reads_nothing_back(pair):
    with use_gateway(pair.b.xurrent):
        poll_xurrent(every=30)  # sets the watermark
    copy, twin = copied_to_b(pair)
    with use_gateway(pair.b.xurrent):
        assert poll_xurrent(every=30, force=True) == 1
    twin.refresh_from_db()
    assert not twin.dirty
