"""A connection's Sync tab (/connections/<id>/sync/)."""

import pytest

from sync.models import BulkExalate, BulkState, SyncError, Trigger, Twin, TwinStatus
from sync.services.gateway import use_gateway
from tests.sync.test_errors import BROKEN_INCOMING, OUTGOING, start


def tab(pair, side="a"):
    return f"/connections/{getattr(pair, side).connection.pk}/sync/"


def test_the_tab_shows_triggers_queue_and_twins(admin_client, pair):
    pair.a.trigger("category=incident")
    start(pair, "shown")
    pair.sync()
    page = admin_client.get(tab(pair))
    assert page.status_code == 200
    text = page.content.decode()
    assert "category=incident" in text
    assert "Synced requests (1)" in text
    assert 'data-status="open"' in text


def test_the_connection_page_links_to_the_tab(admin_client, pair):
    page = admin_client.get(f"/connections/{pair.a.connection.pk}/")
    assert tab(pair) in page.content.decode()


def test_a_trigger_is_added_and_switched_off(admin_client, pair):
    response = admin_client.post(tab(pair) + "triggers/", {"query": "?impact=high", "note": "x"})
    assert response.status_code == 302
    trigger = Trigger.objects.get()
    assert trigger.query == "impact=high"
    admin_client.post(tab(pair) + f"triggers/{trigger.pk}/switch/")
    trigger.refresh_from_db()
    assert trigger.active is False


def test_a_bad_trigger_is_refused_with_the_reason_and_nothing_stored(admin_client, pair):
    response = admin_client.post(tab(pair) + "triggers/", {"query": "page=2"})
    assert response.status_code == 400
    assert "cannot be part of a trigger" in response.content.decode()
    assert not Trigger.objects.exists()


def test_bulk_exalate_waits_for_the_worker_and_pressing_twice_is_safe(admin_client, pair):
    pair.a.trigger()
    admin_client.post(tab(pair) + "bulk-exalate/")
    admin_client.post(tab(pair) + "bulk-exalate/")
    run = BulkExalate.objects.get()
    assert run.state == BulkState.WAITING


def test_exalate_and_unexalate_by_id_from_the_tab(admin_client, pair):
    request = pair.a.xurrent.human_creates(subject="by id", category="rfc")
    with use_gateway(pair.a.xurrent):
        admin_client.post(tab(pair) + "exalate/", {"request_id": request["id"]})
    assert Twin.objects.get().local_request_id == request["id"]
    admin_client.post(tab(pair) + "unexalate/", {"request_id": request["id"]})
    assert Twin.objects.get().status == TwinStatus.CLOSED
    page = admin_client.post(tab(pair) + "unexalate/", {"request_id": request["id"]}, follow=True)
    assert "not synced" in page.content.decode()


def test_retry_and_resolve_from_the_tab(admin_client, pair):
    pair.b.rules(OUTGOING, BROKEN_INCOMING)
    pair.a.trigger()
    start(pair, "boom")
    pair.sync()
    error = SyncError.objects.get(connection=pair.b.connection)
    text = admin_client.get(tab(pair, "b")).content.decode()
    assert f"Line {error.line}" in text
    pair.b.rules()
    admin_client.post(tab(pair, "b") + f"errors/{error.pk}/retry/")
    pair.sync()
    assert [r["subject"] for r in pair.b.xurrent.all_requests()] == ["boom"]
    # The other side's copy of the error is shown there read-only: nothing to do there.
    shown = SyncError.objects.filter(connection=pair.a.connection).first()
    if shown is not None and shown.resolved_at is None:
        page = admin_client.post(tab(pair) + f"errors/{shown.pk}/resolve/", follow=True)
        assert "retried there" in page.content.decode()


@pytest.mark.parametrize("path", ["triggers/", "bulk-exalate/", "exalate/"])
def test_a_viewer_cannot_change_what_is_synced(viewer_client, pair, path):
    response = viewer_client.post(tab(pair) + path, {"query": "impact=high", "request_id": 1})
    assert response.status_code == 403
    assert not Trigger.objects.exists()
    assert viewer_client.get(tab(pair)).status_code == 200
