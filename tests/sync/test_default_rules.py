"""The default rules, unchanged, between two Xurrent accounts: what a person does on one
side (complete a request, reopen it, raise its impact) is what the other side shows."""

import pytest

from sync.defaults import DEFAULT_INCOMING, DEFAULT_OUTGOING
from sync.entity import request_problems
from sync.models import SyncError
from sync.sandbox import run_incoming


@pytest.fixture
def defaults(pair):
    pair.a.rules(DEFAULT_OUTGOING, DEFAULT_INCOMING)
    pair.b.rules(DEFAULT_OUTGOING, DEFAULT_INCOMING)
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(
        subject="Printer on fire", category="incident", impact="low", team_id=1
    )
    pair.a.notice(request["id"])
    pair.sync()
    [copy] = pair.b.xurrent.all_requests()
    return pair, request["id"], copy["id"]


def edit_on_a(pair, request_id: int, **fields) -> dict:
    pair.a.xurrent.human_updates(request_id, **fields)
    pair.a.notice(request_id)
    pair.sync()
    return pair.b.xurrent.all_requests()[0]


def test_a_request_completed_on_one_side_is_completed_with_its_resolution_on_the_other(
    defaults,
):
    pair, on_a, _ = defaults
    copy = edit_on_a(pair, on_a, status="completed", completion_reason="workaround")
    assert (copy["status"], copy["completion_reason"]) == ("completed", "workaround")
    assert not SyncError.objects.exists()


def test_a_reopened_request_is_reopened_on_the_other_side(defaults):
    pair, on_a, _ = defaults
    edit_on_a(pair, on_a, status="completed", completion_reason="solved")
    copy = edit_on_a(pair, on_a, status="in_progress")
    assert (copy["status"], copy["completion_reason"]) == ("in_progress", None)
    assert not SyncError.objects.exists()


def test_a_higher_impact_crosses_as_it_is(defaults):
    pair, on_a, _ = defaults
    assert edit_on_a(pair, on_a, impact="high")["impact"] == "high"


def test_done_from_a_side_that_is_not_xurrent_completes_the_request_as_solved(
    persistent_sandbox,
):
    request = {"id": 7, "subject": "s", "category": "incident", "status": "in_progress"}
    outcome = run_incoming(DEFAULT_INCOMING, {"status": "Done", "summary": "s"}, request)
    assert (outcome.result["status"], outcome.result["resolution"]) == ("completed", "solved")
    assert outcome.warnings == []


def test_a_completed_request_without_a_resolution_is_told_before_xurrent_refuses_it():
    [problem] = request_problems({"status": "completed"}, first_sync=False)
    assert "needs a resolution" in problem and "entity.resolution" in problem
    [problem] = request_problems({"status": "completed", "resolution": "fixed"}, first_sync=False)
    assert "'fixed' is not a Xurrent completion reason" in problem
