"""The sync rules page: viewing, saving, history, restore and test run, with permissions."""

import html
import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from connections.models import ConnectionEvent, EventKind
from sync import DEFAULT_INCOMING, DEFAULT_OUTGOING, SAMPLE_REPLICA, SAMPLE_REQUEST
from sync.models import SyncRuleVersion
from sync.services import save_rules
from tests.sync.conftest import make_connection

OUT = "replica.summary = entity.summary\nreplica.status = entity.status\n"
IN = "entity.summary = replica.summary\n"


@pytest.fixture
def connection(db):
    """The rules page's tests work on a bare script connection (make_connection), not on
    the Sync tab's active pair that conftest's `connection` is."""
    return make_connection("script")


def url(connection, name="rules", **kwargs):
    return reverse(f"sync:{name}", kwargs={"pk": connection.pk, **kwargs})


def form_data(**overrides):
    data = {
        "outgoing": OUT,
        "incoming": IN,
        "note": "",
        "based_on": "0",
        "sample_request": json.dumps(SAMPLE_REQUEST),
        "sample_replica": json.dumps(SAMPLE_REPLICA),
    }
    data.update(overrides)
    return data


def textarea_text(response, name):
    """The text of the named textarea, as the browser will show it."""
    page = response.content.decode()
    start = page.index(f'name="{name}"')
    start = page.index(">", start) + 1
    return html.unescape(page[start : page.index("</textarea>", start)]).removeprefix("\n")


# --- viewing ----------------------------------------------------------------------------------


def test_the_page_shows_the_default_rules_before_the_first_save(admin_client, connection):
    response = admin_client.get(url(connection))
    assert response.status_code == 200
    assert textarea_text(response, "outgoing") == DEFAULT_OUTGOING
    assert textarea_text(response, "incoming") == DEFAULT_INCOMING
    assert 'data-rules-version="0"' in response.content.decode()
    assert "the default rules" in response.content.decode()
    assert "Save as version 1" in response.content.decode()


def test_the_page_shows_the_latest_version(admin_client, connection, admin_user):
    save_rules(connection, OUT, IN, admin_user)
    response = admin_client.get(url(connection))
    assert textarea_text(response, "outgoing") == OUT
    assert 'data-rules-version="1"' in response.content.decode()


def test_a_viewer_sees_the_rules_read_only(viewer_client, connection):
    response = viewer_client.get(url(connection))
    page = response.content.decode()
    assert response.status_code == 200
    assert "readonly" in page
    assert 'id="save-rules"' not in page
    assert 'id="test-run"' not in page


def test_the_page_needs_a_login(client, connection):
    response = client.get(url(connection))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_page_needs_the_view_permission(client, connection):
    user = get_user_model().objects.create_user("nobody", "", "pw-nobody-123456")
    client.force_login(user)
    assert client.get(url(connection)).status_code == 403


def test_an_unknown_connection_is_not_found(admin_client, db):
    response = admin_client.get("/connections/00000000-0000-0000-0000-000000000000/rules/")
    assert response.status_code == 404


def test_basic_mode_shows_its_fixed_rules_without_an_editor(admin_client, basic_connection):
    response = admin_client.get(url(basic_connection))
    page = response.content.decode()
    assert response.status_code == 200
    for field in ("Summary", "Description", "Comments", "Attachments"):
        assert f"<td>{field}</td>" in page
    assert 'name="outgoing"' not in page


# --- saving -------------------------------------------------------------------------------------


def test_saving_makes_a_version_and_an_event(editor_client, connection):
    response = editor_client.post(url(connection), form_data(note="status too"))
    assert response.status_code == 302
    version = SyncRuleVersion.objects.get(connection=connection)
    assert (version.number, version.outgoing, version.note) == (1, OUT, "status too")
    assert version.created_by == editor_client.user
    event = ConnectionEvent.objects.get(connection=connection, kind=EventKind.RULES_CHANGED)
    assert event.actor_user == editor_client.user
    page = editor_client.get(response["Location"]).content.decode()
    assert "saved as version 1" in page


def test_a_script_that_does_not_compile_is_refused_with_its_line_and_kept(
    editor_client, connection
):
    broken = "replica.summary = entity.summary\nif entity.status == 'completed'\n    pass\n"
    response = editor_client.post(url(connection), form_data(outgoing=broken))
    assert response.status_code == 400
    page = response.content.decode()
    assert "<strong>Line 2</strong>" in page
    assert "expected &#x27;:&#x27;" in page
    assert textarea_text(response, "outgoing") == broken
    assert not SyncRuleVersion.objects.exists()
    assert not ConnectionEvent.objects.filter(kind=EventKind.RULES_CHANGED).exists()


def test_an_import_is_refused_with_its_line(editor_client, connection):
    response = editor_client.post(url(connection), form_data(incoming="import os\n"))
    assert response.status_code == 400
    assert "Imports are not allowed" in response.content.decode()
    assert not SyncRuleVersion.objects.exists()


def test_an_empty_script_is_refused(editor_client, connection):
    response = editor_client.post(url(connection), form_data(incoming=""))
    assert response.status_code == 400
    assert not SyncRuleVersion.objects.exists()


def test_a_post_without_fields_saves_nothing(editor_client, connection):
    response = editor_client.post(url(connection), {})
    assert response.status_code == 400
    assert not SyncRuleVersion.objects.exists()


def test_saving_unchanged_rules_makes_no_new_version(editor_client, connection, admin_user):
    save_rules(connection, OUT, IN, admin_user)
    response = editor_client.post(url(connection), form_data(based_on="1"), follow=True)
    assert "Nothing to save" in response.content.decode()
    assert connection.rule_versions.count() == 1


def test_a_save_over_someone_elses_newer_version_is_refused_and_keeps_the_text(
    editor_client, connection, admin_user
):
    save_rules(connection, OUT, IN, admin_user)  # saved while the editor had the defaults
    mine = "replica.key = entity.key\n"
    response = editor_client.post(url(connection), form_data(outgoing=mine, based_on="0"))
    assert response.status_code == 409
    assert "while you were editing" in response.content.decode()
    assert textarea_text(response, "outgoing") == mine
    assert connection.rule_versions.count() == 1
    # The page now knows about version 1: saving again goes through.
    assert 'name="based_on" value="1"' in response.content.decode()
    editor_client.post(url(connection), form_data(outgoing=mine, based_on="1"))
    assert connection.rule_versions.count() == 2


def test_a_viewer_cannot_save(viewer_client, connection):
    response = viewer_client.post(url(connection), form_data())
    assert response.status_code == 403
    assert not SyncRuleVersion.objects.exists()


def test_basic_mode_refuses_a_save(admin_client, basic_connection):
    response = admin_client.post(url(basic_connection), form_data())
    assert response.status_code == 409
    assert "cannot be edited" in response.content.decode()
    assert not SyncRuleVersion.objects.exists()


def test_other_methods_are_not_allowed(admin_client, connection):
    assert admin_client.put(url(connection)).status_code == 405


# --- history and restore -----------------------------------------------------------------------


def test_the_history_lists_versions_newest_first(admin_client, connection, admin_user):
    save_rules(connection, OUT, IN, admin_user, note="first")
    save_rules(connection, OUT + "replica.key = entity.key\n", IN, admin_user, note="second")
    page = admin_client.get(url(connection)).content.decode()
    assert page.index('data-version="2"') < page.index('data-version="1"')
    assert "second" in page
    assert page.count('class="restore"') == 1  # the version in force has no Restore


def test_a_version_page_shows_its_text_and_what_changed(admin_client, connection, admin_user):
    save_rules(connection, OUT, IN, admin_user)
    save_rules(connection, OUT + "replica.key = entity.key\n", IN, admin_user)
    response = admin_client.get(url(connection, "rules_version", number=2))
    page = response.content.decode()
    assert response.status_code == 200
    assert '<span class="diff-add">+replica.key = entity.key</span>' in page
    assert "Changes from version 1" in page


def test_the_first_version_is_compared_with_the_defaults(admin_client, connection, admin_user):
    save_rules(connection, OUT, IN, admin_user)
    page = admin_client.get(url(connection, "rules_version", number=1)).content.decode()
    assert "Changes from the defaults" in page


def test_an_unknown_version_is_not_found(admin_client, connection):
    assert admin_client.get(url(connection, "rules_version", number=3)).status_code == 404
    assert admin_client.post(url(connection, "rules_restore", number=3)).status_code == 404


def test_restoring_makes_a_new_version_with_the_old_text(editor_client, connection, admin_user):
    save_rules(connection, OUT, IN, admin_user)
    save_rules(connection, "replica.key = entity.key\n", IN, admin_user)
    response = editor_client.post(url(connection, "rules_restore", number=1), follow=True)
    assert "restored" in response.content.decode()
    latest = connection.rule_versions.first()
    assert (latest.number, latest.outgoing, latest.created_by) == (3, OUT, editor_client.user)


def test_restoring_needs_the_change_permission(viewer_client, connection, admin_user):
    save_rules(connection, OUT, IN, admin_user)
    save_rules(connection, "replica.key = entity.key\n", IN, admin_user)
    response = viewer_client.post(url(connection, "rules_restore", number=1))
    assert response.status_code == 403
    assert connection.rule_versions.count() == 2


def test_restoring_is_a_post_only(admin_client, connection, admin_user):
    save_rules(connection, OUT, IN, admin_user)
    assert admin_client.get(url(connection, "rules_restore", number=1)).status_code == 405


# --- test run -----------------------------------------------------------------------------------


def test_a_test_run_shows_the_replica_and_the_changes_and_saves_nothing(editor_client, connection):
    data = form_data(outgoing=DEFAULT_OUTGOING, incoming=DEFAULT_INCOMING)
    response = editor_client.post(url(connection, "rules_test_run"), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="replica"' in page
    assert html.escape(json.dumps(SAMPLE_REQUEST["subject"]), quote=True) in page
    assert 'id="incoming-changes"' in page
    assert 'data-field="priority"' in page
    assert textarea_text(response, "outgoing") == DEFAULT_OUTGOING
    assert not SyncRuleVersion.objects.exists()
    assert not ConnectionEvent.objects.exists()


def test_a_first_sync_test_run_starts_from_an_empty_request(editor_client, connection):
    data = form_data(incoming=DEFAULT_INCOMING, first_sync="on")
    page = editor_client.post(url(connection, "rules_test_run"), data).content.decode()
    assert "a new local request (first sync)" in page
    assert 'data-field="category"' in page


def test_a_test_run_uses_the_edited_samples(editor_client, connection):
    sample = {**SAMPLE_REQUEST, "subject": "Printer on floor 3 jams"}
    data = form_data(sample_request=json.dumps(sample))
    page = editor_client.post(url(connection, "rules_test_run"), data).content.decode()
    assert "Printer on floor 3 jams" in page
    # The edited sample is offered again on the next visit.
    assert "Printer on floor 3 jams" in editor_client.get(url(connection)).content.decode()


def test_a_test_run_with_a_broken_sample_says_where_and_keeps_it(editor_client, connection):
    broken = '{\n  "subject": "x",\n  "status" "assigned"\n}'
    response = editor_client.post(
        url(connection, "rules_test_run"), form_data(sample_request=broken)
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "not valid JSON" in page
    assert "line 3" in page
    assert textarea_text(response, "sample_request") == broken
    assert "Not run." in page


def test_a_test_run_reports_a_script_failure_with_its_line(editor_client, connection):
    data = form_data(outgoing="replica.a = 1\nreplica.b = entity.assignee.missing.name\n")
    page = editor_client.post(url(connection, "rules_test_run"), data).content.decode()
    assert "The outgoing script failed" in page
    assert "<strong>Line 2</strong>" in page


def test_a_test_run_does_not_run_a_script_that_does_not_compile(editor_client, connection):
    data = form_data(incoming="entity.summary = (\n")
    page = editor_client.post(url(connection, "rules_test_run"), data).content.decode()
    assert "The incoming script does not compile" in page
    assert 'id="replica"' in page  # the outgoing one still ran


def test_a_test_run_needs_the_change_permission(viewer_client, connection):
    response = viewer_client.post(url(connection, "rules_test_run"), form_data())
    assert response.status_code == 403


def test_a_test_run_is_refused_in_basic_mode(admin_client, basic_connection):
    response = admin_client.post(url(basic_connection, "rules_test_run"), form_data())
    assert response.status_code == 409


def test_a_version_number_out_of_range_is_not_found(admin_client, connection):
    huge = 10**30
    assert admin_client.get(url(connection, "rules_version", number=huge)).status_code == 404
    assert admin_client.post(url(connection, "rules_restore", number=huge)).status_code == 404
