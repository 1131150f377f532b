"""The rate budget's shares (DESIGN.md §11): incoming writes come first, polling keeps a
share, bulk exalate takes at most half, and a Retry-After pauses everyone. A fake clock
stands for time; each test covers minutes of it in a few milliseconds."""

from __future__ import annotations

from collections import Counter

import pytest

from xurrent.client import BudgetWait, Purpose, RateBudget, XurrentClient

STEP = 0.1  # seconds of fake time between two rounds of asking


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def budget(clock) -> RateBudget:
    """Xurrent's own limits: 3,600 calls an hour (one a second), 20 within 2 s."""
    return RateBudget(per_hour=3600, burst=20, burst_seconds=2, clock=clock)


def take_all(budget: RateBudget, purpose: Purpose) -> int:
    """A greedy caller: as many tokens as the budget gives `purpose` right now."""
    taken = 0
    while budget.wait_needed(purpose) == 0:
        taken += 1
    return taken


def test_bulk_never_takes_more_than_half_of_the_hourly_budget_while_incoming_proceeds(
    budget, clock
):
    taken: Counter[Purpose] = Counter()
    incoming_waits = []
    seconds = 600
    for step in range(int(seconds / STEP)):
        clock.now += STEP
        if step % 40 == 0:  # an incoming write every 4 s, asked before bulk
            incoming_waits.append(budget.wait_needed(Purpose.INCOMING))
            taken[Purpose.INCOMING] += incoming_waits[-1] == 0
        taken[Purpose.BULK] += take_all(budget, Purpose.BULK)
    assert set(incoming_waits) == {0.0}  # every incoming write went through at once
    assert taken[Purpose.INCOMING] == 150
    # Half of 600 calls, plus the few of bulk's own bucket at the start: and not less,
    # since the rest of the budget was idle enough to leave bulk its whole share.
    assert 0.5 * seconds - 5 <= taken[Purpose.BULK] <= 0.5 * seconds + budget.bulk_capacity


def test_bulk_alone_still_takes_only_half(budget, clock):
    bulk = take_all(budget, Purpose.BULK)
    for _ in range(int(300 / STEP)):
        clock.now += STEP
        bulk += take_all(budget, Purpose.BULK)
    assert bulk <= 150 + budget.bulk_capacity
    # What bulk left is there for the others at once: a full bucket.
    assert take_all(budget, Purpose.POLL) >= budget.capacity - 1


def test_polling_keeps_its_reserve_whatever_bulk_and_incoming_take(budget, clock):
    poll_waits = []
    for step in range(int(300 / STEP)):
        clock.now += STEP
        take_all(budget, Purpose.BULK)
        take_all(budget, Purpose.INCOMING)
        take_all(budget, Purpose.OUTGOING)
        if step % 100 == 0:  # a poll every 10 s, after the others took all they could
            poll_waits.append(budget.wait_needed(Purpose.POLL))
    assert set(poll_waits) == {0.0}
    # Bulk alone leaves at least half the bucket, so a poll of several pages goes at once.
    clock.now += 60
    take_all(budget, Purpose.BULK)
    assert take_all(budget, Purpose.POLL) >= budget.capacity // 2


def test_incoming_is_served_before_bulk_when_tokens_are_scarce(budget, clock):
    # Both ask for all they can every step, bulk first: the bucket stays low, and only
    # incoming may draw from a low bucket.
    taken: Counter[Purpose] = Counter()
    for _ in range(int(120 / STEP)):
        clock.now += STEP
        taken[Purpose.BULK] += take_all(budget, Purpose.BULK)
        taken[Purpose.INCOMING] += take_all(budget, Purpose.INCOMING)
    # Bulk had only what the full bucket held at the start (down to half of it).
    assert taken[Purpose.BULK] <= budget.capacity - budget.floor(Purpose.BULK)
    assert taken[Purpose.INCOMING] >= 120 - 1
    # Outgoing reads come between the two: before bulk, after incoming.
    assert budget.floor(Purpose.INCOMING) < budget.floor(Purpose.OUTGOING)
    assert budget.floor(Purpose.OUTGOING) < budget.floor(Purpose.BULK)


def test_a_retry_after_pauses_every_purpose(budget, clock):
    budget.pause(30)
    for purpose in Purpose:
        assert budget.wait_needed(purpose) == pytest.approx(30)
    clock.now += 31
    for purpose in Purpose:
        assert budget.wait_needed(purpose) == 0


def test_xurrents_word_that_nothing_is_left_pauses_every_purpose(budget, clock):
    budget.observe(remaining=0, reset_in=120)
    assert {purpose: budget.wait_needed(purpose) > 100 for purpose in Purpose} == {
        purpose: True for purpose in Purpose
    }


def test_a_bucket_of_one_token_lets_every_purpose_take_it(clock):
    tiny = RateBudget(per_hour=3600, burst=3, burst_seconds=2, clock=clock)
    assert tiny.capacity == 1
    for purpose in Purpose:
        clock.now += 10
        assert tiny.wait_needed(purpose) == 0


def test_a_bulk_call_stops_at_once_for_the_budget_while_others_wait_for_it(budget, clock):
    sleeps = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    client = XurrentClient("http://127.0.0.1:9", "acme", "token", budget=budget, sleep=sleep)
    take_all(budget, Purpose.BULK)
    with pytest.raises(BudgetWait) as waited:
        client.for_purpose(Purpose.BULK).me()  # never sent: no token, no sleep
    assert sleeps == []
    assert waited.value.kind == "rate_limited" and waited.value.retry_at is not None
    assert "Waiting for the rate budget" in waited.value.message
    # A person's call within its time limit sleeps for its token instead.
    take_all(budget, Purpose.INTERACTIVE)
    budget.spend(Purpose.INTERACTIVE, patience=10, sleep=sleep)
    assert len(sleeps) >= 1 and sum(sleeps) <= 10
    # One that cannot wait so long gets BudgetWait (and nobody else is paused).
    take_all(budget, Purpose.INTERACTIVE)
    with pytest.raises(BudgetWait):
        budget.spend(Purpose.INTERACTIVE, patience=0.1, sleep=sleep)
    assert budget.paused_until == 0


def test_has_room_says_what_taking_would_give_and_takes_nothing(budget, clock):
    for purpose in (Purpose.BULK, Purpose.INCOMING, Purpose.POLL):
        free = take_all(RateBudget(per_hour=3600, burst=20, burst_seconds=2, clock=clock), purpose)
        assert budget.has_room(purpose, free)
        assert not budget.has_room(purpose, free + 1)
    assert take_all(budget, Purpose.BULK) > 0  # nothing was taken by asking
    assert not budget.has_room(Purpose.BULK, 1)
    budget.pause(30)
    assert not budget.has_room(Purpose.INCOMING, 1)
