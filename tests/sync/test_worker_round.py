"""The sync queue's part of run_worker's round, in-process, on a local connection."""

from io import StringIO

from connections.management.commands.run_worker import Command
from sync.models import PollState, Twin
from sync.services.gateway import use_gateway
from sync.services.worker import FIRST_PRODUCED, _Produced, run_sync_round
from tests.sync.engine import Pair, Side, make_local_pair
from tests.sync.fake_xurrent import FakeXurrent
from xurrent.models import WebhookHint


def test_rounds_take_a_webhook_hint_through_to_the_copy(node, persistent_sandbox):
    a, b = make_local_pair("Worker")
    account = FakeXurrent("shared")
    pair = Pair(Side(a, account), Side(b, account))
    pair.a.rules()
    pair.b.rules()
    pair.a.trigger()
    request = account.human_creates(subject="through the worker", category="incident", impact="low")
    WebhookHint.objects.create(event="request.create", object_id=request["id"], account="shared")
    with use_gateway(account):
        reports = [run_sync_round(poll_every=3600) for _ in range(6)]
    assert reports[0].hints == 1
    assert any(r.sent for r in reports) and any(r.applied for r in reports)
    assert [r["subject"] for r in account.all_requests()] == ["through the worker"] * 2
    assert Twin.objects.count() == 2
    assert PollState.account().watermark is not None  # the first poll set it


def test_run_worker_runs_the_sync_round_beside_the_notifications(node, persistent_sandbox):
    account = FakeXurrent("quiet")
    waits = []
    with use_gateway(account):
        Command(stdout=StringIO()).work(batch_size=5, idle=0.01, max_rounds=2, wait=waits.append)
    # Nothing to do: each round waits; the first poll asked Xurrent for its clock.
    assert waits == [0.01, 0.01]
    assert account.calls["list"] == 1


def test_a_round_without_a_xurrent_account_still_sends_and_acks(node, persistent_sandbox):
    report = run_sync_round()
    assert report.problems == []
    assert not report.busy


def test_a_burst_is_produced_a_little_first_then_in_doubling_batches():
    produced = _Produced()
    limits = []
    for _ in range(5):  # every round takes all it may: a burst is waiting
        limit = produced.next_limit(100)
        limits.append(limit)
        produced.took(limit, limit, 100)
    assert limits == [FIRST_PRODUCED, 40, 80, 100, 100]
    produced.took(7, 100, 100)  # the burst is over: the next one starts small again
    assert produced.next_limit(100) == FIRST_PRODUCED
    assert produced.next_limit(5) == 5  # never more than the round's batch size
