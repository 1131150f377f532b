"""The rate budget's shares through the worker's own services: a bulk exalate under a small
budget takes at most its share, waits for the rest (saying so, with no error), and leaves
tokens for the other side's incoming changes. Side A's Xurrent is the fake account behind
a real RateBudget on a fake clock, as the engine's client is behind its budget."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from sync.models import BulkState, InboundEvent, PollState, SyncError, SyncEvent, Twin
from sync.services import scope
from sync.services.apply import apply_inbound
from sync.services.bulk import latest_bulk, run_claimed
from sync.services.gateway import ENGINE_TIME_LIMIT, Purpose, use_gateway
from sync.services.produce import produce_changes
from sync.services.scope import start_bulk_exalate
from xurrent.client import RateBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[tuple[Purpose, float]] = []

    def __call__(self) -> float:
        return self.now


class Budgeted:
    """A FakeXurrent whose every call first spends a token of the purpose the engine
    asked for (`get_gateway(purpose)`), as XurrentClient does: a bulk call stops at once
    with BudgetWait, the others sleep for their token (on the fake clock)."""

    def __init__(self, xurrent, budget: RateBudget, clock: Clock, purpose=Purpose.INTERACTIVE):
        self.xurrent, self.budget, self.clock, self.purpose = xurrent, budget, clock, purpose
        self.spent: Counter[Purpose] = Counter() if purpose == Purpose.INTERACTIVE else None
        self.filters: list[dict] = []
        self.yielding = None  # as the purpose says

    def for_purpose(self, purpose: Purpose) -> Budgeted:
        other = Budgeted(self.xurrent, self.budget, self.clock, purpose)
        other.spent, other.filters = self.spent, self.filters
        return other

    def patient(self) -> Budgeted:
        other = self.for_purpose(self.purpose)
        other.yielding = False
        return other

    def _spend(self) -> None:
        def sleep(seconds: float) -> None:
            self.clock.slept.append((self.purpose, seconds))
            self.clock.now += seconds

        self.budget.spend(
            self.purpose, patience=ENGINE_TIME_LIMIT, sleep=sleep, yielding=self.yielding
        )
        self.spent[self.purpose] += 1

    def has_room(self, calls: int) -> bool:
        return self.budget.has_room(self.purpose, calls)

    def request_pages(self, filters=None, **options):
        self.filters.append(dict(filters or {}))
        self._spend()
        for number, page in enumerate(self.xurrent.request_pages(filters, **options)):
            if number:
                self._spend()
            yield page

    def __getattr__(self, name):
        call = getattr(self.xurrent, name)
        if name not in (
            "get_request",
            "create_request",
            "update_request",
            "list_notes",
            "add_note",
        ):
            return call

        def spending(*args, **kwargs):
            self._spend()
            return call(*args, **kwargs)

        return spending


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def small_budget(clock) -> RateBudget:
    """360 calls an hour (one every 10 s): a bucket of 18, bulk's own of 9."""
    return RateBudget(per_hour=360, burst=20, burst_seconds=2, clock=clock)


def incoming_change_waiting_on_a(pair) -> dict:
    """A request synced A → B, then edited on B: its event waits on A to be applied."""
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject="old words", category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.sync()
    (copy,) = pair.b.xurrent.all_requests()
    pair.b.xurrent.human_updates(copy["id"], subject="new words from B")
    pair.b.notice(copy["id"])
    pair.b.produce()
    pair.b.send()
    assert InboundEvent.objects.filter(twin__connection=pair.a.connection).count() == 1
    return request


def test_a_bulk_exalate_on_a_small_budget_leaves_tokens_for_incoming_changes(
    pair, small_budget, clock
):
    synced = incoming_change_waiting_on_a(pair)
    for n in range(30):
        pair.a.xurrent.human_creates(subject=f"backlog {n}", category="incident", impact="low")
    a = Budgeted(pair.a.xurrent, small_budget, clock)
    run, _ = start_bulk_exalate(pair.a.connection)
    with use_gateway(a):
        run = run_claimed(run)  # the worker's bulk thread: listing the matches
        produced = produce_changes(connection=pair.a.connection, limit=50)
        applied = apply_inbound(connection=pair.a.connection)

    assert (run.state, run.found, run.exalated, run.skipped) == (BulkState.FINISHED, 31, 30, 1)
    # Bulk's share of a full bucket is 9 calls: the listing and two reads for each of four
    # requests; the other 26 wait for the budget, as waiting, not as failures.
    assert a.spent[Purpose.BULK] == 9
    assert (produced.events, produced.waiting, produced.failed) == (4, 26, 0)
    assert SyncEvent.objects.filter(connection=pair.a.connection).count() == 1 + 4
    # The incoming change went at once, on the tokens bulk had to leave.
    assert applied.applied == 1 and clock.slept == []
    assert pair.a.xurrent.store.get_request(synced["id"])["subject"] == "new words from B"
    # Waiting is not an error, and does not pause anyone else.
    assert not SyncError.objects.exists() and not PollState.account_paused()
    waiting = Twin.objects.filter(bulk_run=run, last_seq_sent=0)
    assert waiting.count() == 26 and all(t.next_try_at > timezone.now() for t in waiting)
    progress = latest_bulk(pair.a.connection)
    assert progress.failed == 0 and progress.run.waiting_for_budget
    html = render_to_string("sync/tab/_bulk.html", {"bulk": progress})
    assert "Waiting for the rate budget" in html

    # Minutes later bulk has its share again and goes on where it stopped.
    clock.now += 180
    Twin.objects.filter(bulk_run=run).update(next_try_at=None)
    with use_gateway(a):
        again = produce_changes(connection=pair.a.connection, limit=50)
    # (the last of its nine tokens read a request whose notes would wait longer than a
    # call may: read again later)
    assert (again.events, again.waiting) == (4, 22)
    assert a.spent[Purpose.BULK] == 9 + 9


def test_bulk_twins_on_a_bucket_of_one_token_are_read_whole_not_begun_again_and_again(pair, clock):
    """The live tests' budget (ten calls a second, bursts of 20) makes a bucket of one token
    that refills a token at a time: a read's second call must wait for its token, or the
    read would take the first token, yield, and start over forever."""
    budget = RateBudget(per_hour=36_000, burst=20, burst_seconds=2, clock=clock)
    assert (budget.capacity, budget.bulk_capacity) == (1, 1)
    pair.a.trigger()
    for n in range(3):
        pair.a.xurrent.human_creates(subject=f"backlog {n}", category="incident", impact="low")
    a = Budgeted(pair.a.xurrent, budget, clock)
    run, _ = start_bulk_exalate(pair.a.connection)
    events = 0
    with use_gateway(a):
        run_claimed(run)
        for _ in range(10):
            clock.now += 1  # the worker's next rounds
            Twin.objects.filter(bulk_run=run).update(next_try_at=None)
            events += produce_changes(connection=pair.a.connection, limit=50).events
    assert events == 3
    assert SyncEvent.objects.filter(connection=pair.a.connection).count() == 3


def test_a_bulk_listing_that_runs_out_of_its_share_waits_and_resumes_past_its_last_page(
    pair, small_budget, clock, monkeypatch
):
    pair.a.trigger()
    for n in range(120):
        pair.a.xurrent.human_creates(subject=f"backlog {n}", category="incident", impact="low")
    while small_budget.bulk_tokens >= 2:  # one bulk call left: the first page
        small_budget.wait_needed(Purpose.BULK)
    waits = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(scope, "_sleep", sleep)
    a = Budgeted(pair.a.xurrent, small_budget, clock)
    run, _ = start_bulk_exalate(pair.a.connection)
    with use_gateway(a):
        run = run_claimed(run)
    assert (run.state, run.found, run.exalated, run.skipped) == (BulkState.FINISHED, 120, 120, 0)
    assert 19 < sum(waits) <= 21  # one bulk token comes every 20 s
    assert run.budget_wait_until is not None
    # The first list from the start; after the wait, only past its first page.
    assert a.filters[0].get("id") is None and {f.get("id") for f in a.filters[1:]} == {">100"}
    assert Twin.objects.filter(bulk_run=run).count() == 120


def test_twins_a_bulk_exalate_started_are_ordinary_changes_once_sent(pair):
    from sync.services.produce import purpose_of

    pair.a.trigger()
    pair.a.xurrent.human_creates(subject="one", category="incident", impact="low")
    run, _ = start_bulk_exalate(pair.a.connection)
    with use_gateway(pair.a.xurrent):
        run_claimed(run)
    twin = Twin.objects.get(bulk_run=run)
    assert purpose_of(twin) == Purpose.BULK
    pair.sync()
    twin.refresh_from_db()
    assert purpose_of(twin) == Purpose.OUTGOING
    assert timezone.now() - run.started_at < timedelta(minutes=1)


def test_a_429_during_a_bulk_listing_pauses_every_worker_and_the_run_waits_it_out(
    pair, monkeypatch
):
    pair.a.trigger()
    for n in range(3):
        pair.a.xurrent.human_creates(subject=f"backlog {n}", category="incident", impact="low")
    until = timezone.now() + timedelta(seconds=40)
    pair.a.xurrent.fail_next("list", "rate_limited", retry_at=until)
    naps = []
    monkeypatch.setattr(scope, "_sleep", naps.append)
    run, _ = start_bulk_exalate(pair.a.connection)
    with use_gateway(pair.a.xurrent):
        run = run_claimed(run)
    assert (run.state, run.found, run.exalated) == (BulkState.FINISHED, 3, 3)
    assert PollState.account_paused()  # Xurrent's word stops every worker, not only bulk
    assert naps == [scope.BULK_NAP]  # a long wait is slept in naps that keep the lease
    assert run.budget_wait_until == until


def test_an_ordinary_change_is_read_before_the_twins_a_bulk_exalate_started(pair):
    pair.a.trigger()
    synced = pair.a.xurrent.human_creates(subject="synced", category="incident", impact="low")
    pair.a.notice(synced["id"])
    pair.sync()
    for n in range(5):
        pair.a.xurrent.human_creates(subject=f"backlog {n}", category="incident", impact="low")
    run, _ = start_bulk_exalate(pair.a.connection)
    with use_gateway(pair.a.xurrent):
        run_claimed(run)
    # Changed after the bulk run started its twins: still the first to be read.
    pair.a.xurrent.human_updates(synced["id"], subject="changed since")
    pair.a.notice(synced["id"])
    once = produce_changes(gateway=pair.a.xurrent, connection=pair.a.connection, limit=1)
    assert once.events == 1
    (event,) = SyncEvent.objects.filter(connection=pair.a.connection, seq=2)
    assert event.replica["summary"] == "changed since"
    assert Twin.objects.filter(bulk_run=run, last_seq_sent=0).count() == 5


def test_with_room_in_the_budget_a_bulk_batch_is_listed_in_one_call_then_its_notes(pair, clock):
    budget = RateBudget(per_hour=360_000, burst=2000, burst_seconds=2, clock=clock)
    pair.a.trigger()
    made = [
        pair.a.xurrent.human_creates(subject=f"roomy {n}", category="incident", impact="low")
        for n in range(5)
    ]
    a = Budgeted(pair.a.xurrent, budget, clock)
    run, _ = start_bulk_exalate(pair.a.connection)
    with use_gateway(a):
        run_claimed(run)
        produced = produce_changes(connection=pair.a.connection, limit=50)
    assert produced.events == 5
    # The matches, the batch's five requests in one call, and each one's notes.
    assert a.spent[Purpose.BULK] == 1 + 1 + 5
    assert a.filters[-1] == {"id": ",".join(str(r["id"]) for r in made)}
