"""Bulk exalate from the Sync tab: stored by the press (twice is once), gone through by
the worker with a lease, its progress on the tab: matched, queued, done, failed."""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from sync.models import BulkExalate, BulkState, Trigger, Twin, TwinStatus
from sync.services import bulk
from sync.services.bulk import bulk_worker_task, claim_bulk_runs, latest_bulk, run_claimed
from sync.services.scope import start_bulk_exalate
from tests.sync.tabkit import script_error, tab_url


def text_of(response) -> str:
    return response.content.decode()


def count(html: str, name: str) -> int:
    """A counter of the bulk exalate part."""
    part = html[html.index('data-part="bulk"') : html.index('data-part="queue"')]
    found = re.search(rf'data-count="{name}"[^>]*>(\d+)<', part)
    return int(found.group(1))


@pytest.fixture
def matches(connection, xurrent):
    """Three incidents in Xurrent and a trigger that matches them (and one order that it
    does not)."""
    Trigger.objects.create(connection=connection, query="category=incident")
    for n in range(3):
        xurrent.human_creates(subject=f"incident {n}", category="incident", impact="low")
    xurrent.human_creates(subject="an order", category="order")
    return xurrent


def test_bulk_exalate_needs_an_active_trigger(editor_client, connection):
    Trigger.objects.create(connection=connection, query="category=incident", active=False)
    html = text_of(editor_client.get(tab_url(connection)))
    assert 'id="bulk-exalate" disabled' in html and "Add or switch on a trigger first." in html
    response = editor_client.post(tab_url(connection, "bulk_exalate"), follow=True)
    assert "Bulk exalate did not start. The connection has no active trigger" in text_of(response)
    assert not BulkExalate.objects.exists()


def test_a_press_stores_a_run_for_the_worker_and_a_second_press_finds_it(
    editor_client, editor, connection, matches
):
    response = editor_client.post(tab_url(connection, "bulk_exalate"), follow=True)
    run = BulkExalate.objects.get()
    assert (run.state, run.in_worker, run.started_by) == (BulkState.RUNNING, True, editor)
    html = text_of(response)
    assert "Bulk exalate started" in html
    assert 'id="bulk-progress" data-state="running"' in html
    assert 'data-pending="true"' in html
    assert 'id="bulk-exalate" disabled' in html
    assert response.redirect_chain[-1][0].endswith("/sync/#bulk")

    again = editor_client.post(tab_url(connection, "bulk_exalate"), follow=True)
    assert "is running already" in text_of(again)
    assert BulkExalate.objects.count() == 1
    assert matches.calls["list"] == 0  # the page never goes through the matches itself


def test_a_viewer_cannot_start_a_bulk_exalate(client, viewer, connection, matches):
    client.force_login(viewer)
    assert client.post(tab_url(connection, "bulk_exalate")).status_code == 403
    assert not BulkExalate.objects.exists()


def test_the_worker_goes_through_the_run_and_the_tab_shows_how_far_it_got(
    editor_client, connection, matches
):
    editor_client.post(tab_url(connection, "bulk_exalate"))
    [run] = claim_bulk_runs()
    assert claim_bulk_runs() == []  # leased: no second worker takes it
    run = run_claimed(run, gateway=matches)
    assert (run.state, run.found, run.exalated, run.skipped) == ("finished", 3, 3, 0)
    assert run.lease_until is None

    html = text_of(editor_client.get(tab_url(connection)))
    assert 'id="bulk-progress" data-state="finished"' in html
    assert [count(html, n) for n in ("matched", "skipped", "queued", "done", "failed")] == [
        3,
        0,
        3,
        0,
        0,
    ]
    # The other side applied one; another is held by an error.
    first, second, _third = Twin.objects.order_by("local_request_id")
    Twin.objects.filter(pk=first.pk).update(synced_at=timezone.now())
    script_error(second)
    html = text_of(editor_client.get(tab_url(connection)))
    assert [count(html, n) for n in ("queued", "done", "failed")] == [1, 1, 1]
    assert 'id="bulk-bar" max="3" value="2"' in html


def test_a_second_run_skips_what_the_first_one_synced(connection, matches):
    run, _ = start_bulk_exalate(connection)
    BulkExalate.objects.filter(pk=run.pk).update(in_worker=True)
    run_claimed(claim_bulk_runs()[0], gateway=matches)
    second, started = start_bulk_exalate(connection)
    assert started
    BulkExalate.objects.filter(pk=second.pk).update(in_worker=True)
    second = run_claimed(claim_bulk_runs()[0], gateway=matches)
    assert (second.found, second.exalated, second.skipped) == (3, 0, 3)
    assert Twin.objects.count() == 3


def test_a_run_the_command_goes_through_is_never_taken_by_the_worker(connection, matches):
    start_bulk_exalate(connection)  # what `bulk_exalate` does before going through it
    assert claim_bulk_runs() == []


def test_a_run_whose_worker_stopped_is_taken_again_and_counted_afresh(connection, matches):
    run, _ = start_bulk_exalate(connection)
    BulkExalate.objects.filter(pk=run.pk).update(in_worker=True)
    [run] = claim_bulk_runs()
    BulkExalate.objects.filter(pk=run.pk).update(found=2, exalated=2)  # it died half-way
    assert claim_bulk_runs() == []
    BulkExalate.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    [again] = claim_bulk_runs()
    again = run_claimed(again, gateway=matches)
    assert (again.state, again.found, again.exalated) == ("finished", 3, 3)
    assert "Started again" in again.message


def test_a_run_without_a_xurrent_account_stops_with_why(editor_client, connection, node):
    Trigger.objects.create(connection=connection, query="category=incident")
    node.xurrent_api_token = ""
    node.save()
    editor_client.post(tab_url(connection, "bulk_exalate"))
    run = run_claimed(claim_bulk_runs()[0])
    assert run.state == BulkState.FAILED and "not set up" in run.message
    html = text_of(editor_client.get(tab_url(connection)))
    assert 'data-state="failed"' in html and "Stopped" in html
    assert 'data-pending="false"' in html


def test_a_run_nobody_takes_says_that_no_worker_seems_to_run(editor_client, connection, matches):
    editor_client.post(tab_url(connection, "bulk_exalate"))
    assert 'id="bulk-no-worker"' not in text_of(editor_client.get(tab_url(connection)))
    BulkExalate.objects.update(started_at=timezone.now() - timedelta(minutes=1))
    assert 'id="bulk-no-worker"' in text_of(editor_client.get(tab_url(connection)))


def test_no_run_yet_is_said_so(connection):
    assert latest_bulk(connection) is None


@pytest.mark.django_db(transaction=True)
def test_the_worker_task_goes_through_a_run_in_a_thread_of_its_own(sides, xurrent, monkeypatch):
    connection = sides[0]
    Trigger.objects.create(connection=connection, query="category=incident")
    for n in range(2):
        xurrent.human_creates(subject=f"incident {n}", category="incident", impact="low")
    run, _ = start_bulk_exalate(connection)
    BulkExalate.objects.filter(pk=run.pk).update(in_worker=True)
    # The thread has no gateway of the test's thread: hand it the simulated account.
    monkeypatch.setattr(bulk, "run_claimed", lambda run: run_claimed(run, gateway=xurrent))
    assert bulk_worker_task() is False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.state != BulkState.RUNNING:
            break
        time.sleep(0.05)
    assert (run.state, run.found, run.exalated) == ("finished", 2, 2)
    assert Twin.objects.filter(status=TwinStatus.OPEN, dirty=True).count() == 2
    # The run is saved as finished a moment before its thread ends.
    bulk._running[run.pk].join(timeout=10)
    assert bulk_worker_task() is False  # the finished thread is forgotten, nothing to take
    assert bulk._running == {}
