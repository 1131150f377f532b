"""The sync in the operations view: twins, the queue, errors with Retry and Resolve."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from sync.models import EventState, SyncError, SyncEvent, Trigger, Twin, TwinStatus
from tests.sync.test_errors import BROKEN_INCOMING, OUTGOING, start


@pytest.fixture
def blocked(pair):
    """A twin held on B by a script error; the rules fixed afterwards."""
    pair.b.rules(OUTGOING, BROKEN_INCOMING)
    pair.a.trigger()
    start(pair, "boom")
    pair.sync()
    pair.b.rules()
    return SyncError.objects.get(connection=pair.b.connection)


@pytest.mark.parametrize(
    "page",
    [
        "/admin/sync/twin/",
        "/admin/sync/syncevent/",
        "/admin/sync/inboundevent/",
        "/admin/sync/syncerror/",
        "/admin/sync/trigger/",
    ],
)
def test_the_sync_lists_show_for_staff(admin_client, blocked, page):
    response = admin_client.get(page)
    assert response.status_code == 200


def test_the_connection_page_shows_triggers_and_open_errors(admin_client, blocked, pair):
    page = admin_client.get(f"/admin/connections/connection/{pair.b.connection.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "open sync errors" in text.lower()
    assert "TypeError" in text or "NoneType" in text


def test_retry_from_the_errors_list_applies_the_newest_state(admin_client, blocked, pair):
    response = admin_client.post(
        "/admin/sync/syncerror/",
        {"action": "retry_selected", "_selected_action": [blocked.pk]},
    )
    assert response.status_code == 302
    blocked.twin.refresh_from_db()
    assert blocked.twin.status in (TwinStatus.CREATING, TwinStatus.OPEN)
    pair.sync()
    assert [r["subject"] for r in pair.b.xurrent.all_requests()] == ["boom"]


def test_resolve_releases_the_twin(admin_client, blocked):
    admin_client.post(
        "/admin/sync/syncerror/",
        {"action": "resolve_selected", "_selected_action": [blocked.pk]},
    )
    blocked.refresh_from_db()
    assert blocked.resolved_at is not None
    assert blocked.resolved_by.username == "boss"
    blocked.twin.refresh_from_db()
    assert blocked.twin.status != TwinStatus.BLOCKED


def test_a_viewer_sees_the_queue_but_cannot_retry(client, blocked):
    viewer = get_user_model().objects.create_user("watcher", "", "pw-watch-123456", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_syncerror", "view_syncevent", "view_twin"])
    )
    client.force_login(viewer)
    assert client.get("/admin/sync/syncevent/").status_code == 200
    page = client.get("/admin/sync/syncerror/").content.decode()
    assert "retry_selected" not in page
    client.post(
        "/admin/sync/syncerror/", {"action": "retry_selected", "_selected_action": [blocked.pk]}
    )
    blocked.twin.refresh_from_db()
    assert blocked.twin.status == TwinStatus.BLOCKED


def test_triggers_are_added_on_the_sync_tab_not_in_the_admin(admin_client, pair):
    # The tab checks a query with Xurrent before saving it (tests/sync/test_tab.py).
    assert admin_client.get("/admin/sync/trigger/add/").status_code == 403
    assert not Trigger.objects.exists()


def test_events_are_read_only_in_the_admin(admin_client, blocked):
    event = SyncEvent.objects.first()
    page = admin_client.get(f"/admin/sync/syncevent/{event.pk}/change/")
    assert page.status_code == 200
    assert 'name="state"' not in page.content.decode()
    assert event.state == EventState.FAILED
    assert Twin.objects.count() == 2
