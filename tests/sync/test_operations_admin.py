"""The sync in the operations view: lists with filters and search by request id, Retry
and Resolve as actions, nothing editable and nothing secret shown."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from sync.models import BulkExalate, SyncError, SyncEvent, Trigger, TwinStatus
from sync.services.errors import record_error
from tests.sync.tabkit import make_twin, script_error

CHANGELISTS = ["trigger", "twin", "syncevent", "inboundevent", "syncerror", "bulkexalate"]


def changelist(model: str) -> str:
    return f"/admin/sync/{model}/"


@pytest.fixture
def rows(connection):
    Trigger.objects.create(connection=connection, query="category=incident")
    blocked = make_twin(connection, 7, remote_request_id="1007", last_seq_sent=1)
    open_twin = make_twin(connection, 8, remote_request_id="1008")
    SyncEvent.objects.create(connection=connection, twin=blocked, seq=1, replica={"summary": "x"})
    BulkExalate.objects.create(connection=connection, state="finished", found=2, exalated=2)
    error = script_error(blocked)
    return blocked, open_twin, error


@pytest.mark.parametrize("model", CHANGELISTS)
def test_each_list_of_the_operations_view_opens(admin_client, rows, model):
    response = admin_client.get(changelist(model))
    assert response.status_code == 200


def test_the_lists_filter_by_connection_status_kind_level_and_blocking(admin_client, rows):
    blocked, _open_twin, error = rows
    page = admin_client.get(changelist("twin"), {"status__exact": "blocked"}).content.decode()
    assert "#7 ↔ 1007" in page and "#8 ↔ 1008" not in page
    page = admin_client.get(
        changelist("syncerror"),
        {"kind__exact": "script", "level__exact": "request", "blocking__exact": "1", "open": "yes"},
    ).content.decode()
    assert "NameError" in page
    page = admin_client.get(changelist("syncerror"), {"kind__exact": "peer"}).content.decode()
    assert "NameError" not in page
    page = admin_client.get(
        changelist("syncevent"), {"connection__id__exact": str(blocked.connection_id)}
    ).content.decode()
    assert "1 sync event" in page


def test_a_request_id_finds_its_twin_events_and_errors(admin_client, rows):
    page = admin_client.get(changelist("twin"), {"q": "#8"}).content.decode()
    assert "#8 ↔ 1008" in page and "#7 ↔ 1007" not in page
    page = admin_client.get(changelist("twin"), {"q": "1007"}).content.decode()
    assert "#7 ↔ 1007" in page and "#8 ↔ 1008" not in page
    assert "1 sync event" in admin_client.get(changelist("syncevent"), {"q": "7"}).content.decode()
    assert "0 sync events" in admin_client.get(changelist("syncevent"), {"q": "8"}).content.decode()
    assert "NameError" in admin_client.get(changelist("syncerror"), {"q": "7"}).content.decode()
    assert "NameError" not in admin_client.get(changelist("syncerror"), {"q": "8"}).content.decode()


def test_retry_from_the_operations_view_calls_the_engines_retry(admin_client, admin_user, rows):
    blocked, _open_twin, error = rows
    response = admin_client.post(
        changelist("syncerror"),
        {"action": "retry_selected", "_selected_action": [error.pk]},
        follow=True,
    )
    assert "1 error(s) retried." in response.content.decode()
    error.refresh_from_db()
    blocked.refresh_from_db()
    assert error.is_resolved and error.resolved_by == admin_user
    assert (blocked.status, blocked.dirty) == (TwinStatus.OPEN, True)
    assert blocked.events.get().state == "superseded"


def test_resolve_from_the_operations_view_releases_the_twin(admin_client, rows):
    blocked, _open_twin, error = rows
    admin_client.post(
        changelist("syncerror"), {"action": "resolve_selected", "_selected_action": [error.pk]}
    )
    error.refresh_from_db()
    blocked.refresh_from_db()
    assert error.is_resolved and error.resolution == "Resolved."
    assert blocked.status == TwinStatus.OPEN and not blocked.dirty


def test_the_other_sides_errors_are_left_alone_by_the_actions(admin_client, rows):
    blocked, _open_twin, _error = rows
    remote = record_error(
        connection=blocked.connection,
        twin=blocked,
        place="remote",
        kind="peer",
        message="failed there",
        remote=True,
    )
    response = admin_client.post(
        changelist("syncerror"),
        {"action": "resolve_selected", "_selected_action": [remote.pk]},
        follow=True,
    )
    assert "left alone: they are dealt with there" in response.content.decode()
    remote.refresh_from_db()
    assert not remote.is_resolved


def test_twins_are_retried_from_their_list_too(admin_client, rows):
    blocked, _open_twin, error = rows
    admin_client.post(
        changelist("twin"), {"action": "retry_selected", "_selected_action": [blocked.pk]}
    )
    blocked.refresh_from_db()
    error.refresh_from_db()
    assert blocked.status == TwinStatus.OPEN and error.is_resolved


@pytest.fixture
def operator_client(client, db):
    """Staff who may view connections but not change them."""
    user = get_user_model().objects.create_user("operator", "", "pw-operator-123456", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_connection"))
    client.force_login(user)
    return client


def test_staff_who_may_only_view_see_the_lists_without_retry_or_resolve(operator_client, rows):
    _blocked, _open_twin, error = rows
    page = operator_client.get(changelist("syncerror")).content.decode()
    assert "NameError" in page
    assert "retry_selected" not in page and "resolve_selected" not in page
    operator_client.post(
        changelist("syncerror"), {"action": "retry_selected", "_selected_action": [error.pk]}
    )
    error.refresh_from_db()
    assert not error.is_resolved


def test_nothing_can_be_added_edited_or_deleted_here(admin_client, rows):
    blocked, _open_twin, error = rows
    assert admin_client.get(f"{changelist('twin')}add/").status_code == 403
    assert admin_client.get(f"{changelist('syncerror')}{error.pk}/delete/").status_code == 403
    page = admin_client.get(f"{changelist('twin')}{blocked.pk}/change/").content.decode()
    assert 'name="status"' not in page  # shown, never editable
    assert "lease_token" not in page


def test_the_connection_page_of_the_operations_view_shows_its_triggers_and_open_errors(
    admin_client, rows, connection
):
    page = admin_client.get(f"/admin/connections/connection/{connection.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "category=incident" in html and "NameError" in html
    assert connection.shared_secret not in html


def test_a_search_that_is_no_request_id_searches_the_messages(admin_client, rows):
    assert (
        "NameError"
        in admin_client.get(changelist("syncerror"), {"q": "NameError"}).content.decode()
    )
    page = admin_client.get(changelist("twin"), {"q": str(uuid.uuid4())}).content.decode()
    assert "0 twins" in page
    assert SyncError.objects.count() == 1
