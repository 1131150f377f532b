"""The Sync tab: who sees it and who may act, triggers checked with Xurrent, exalate and
unexalate by id, with a bad input always told and nothing changed."""

import pytest
from django.contrib.auth.models import Permission

from sync.models import EventAction, SyncEvent, Trigger, Twin, TwinStatus
from tests.sync.tabkit import make_twin, make_user, script_error, tab_url


def text_of(response) -> str:
    return response.content.decode()


# --- seeing it ----------------------------------------------------------------------------------


def test_the_connection_page_links_to_its_sync_tab_with_a_summary(admin_client, connection):
    script_error(make_twin(connection, 7))
    make_twin(connection, 8)
    make_twin(connection, 9, status=TwinStatus.CLOSED)
    html = text_of(admin_client.get(f"/connections/{connection.pk}/"))
    assert f'href="/connections/{connection.pk}/sync/"' in html
    assert '2 requests synced · <strong class="errors">1 open error</strong>.' in html


def test_a_viewer_sees_the_tab_without_any_button(client, connection, viewer):
    Trigger.objects.create(connection=connection, query="category=incident")
    make_twin(connection, 7)
    client.force_login(viewer)
    response = client.get(tab_url(connection))
    html = text_of(response)
    assert response.status_code == 200
    assert 'id="sync-tab"' in html and "category=incident" in html
    assert 'data-local-id="7"' in html
    for marker in ('id="add-trigger"', 'id="exalate"', 'id="bulk-exalate"', "switch-trigger"):
        assert marker not in html


def test_the_tab_needs_a_login_and_the_permission_to_view_connections(client, connection):
    response = client.get(tab_url(connection))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(make_user("nobody"))
    assert client.get(tab_url(connection)).status_code == 403


def test_an_unknown_connection_has_no_sync_tab(admin_client, db):
    assert (
        admin_client.get("/connections/00000000-0000-0000-0000-000000000000/sync/").status_code
        == 404
    )


# --- triggers -----------------------------------------------------------------------------------


def test_a_trigger_is_saved_once_xurrent_took_its_query(editor_client, connection, gateway):
    response = editor_client.post(
        tab_url(connection, "add_trigger"),
        {"query": "?category=incident&impact=high", "note": "big ones"},
        follow=True,
    )
    trigger = Trigger.objects.get(connection=connection)
    assert (trigger.query, trigger.note, trigger.active) == (
        "category=incident&impact=high",
        "big ones",
        True,
    )
    assert trigger.created_by.username == "editor"
    assert gateway.calls["list"] == 1
    assert "Trigger added: category=incident&amp;impact=high" in text_of(response)
    assert response.redirect_chain[-1][0].endswith("/sync/#triggers")


def test_a_query_xurrent_refuses_is_refused_with_its_message_and_nothing_saved(
    editor_client, connection, gateway
):
    response = editor_client.post(
        tab_url(connection, "add_trigger"), {"query": "colour=red", "note": ""}
    )
    assert response.status_code == 400
    html = text_of(response)
    assert "Xurrent refused this filter" in html
    assert "Filtering on &#x27;colour&#x27; is not supported" in html
    assert 'value="colour=red"' in html  # the typed query is kept to correct it
    assert not Trigger.objects.exists()


def test_a_value_xurrent_refuses_is_refused_too(editor_client, connection, gateway):
    response = editor_client.post(tab_url(connection, "add_trigger"), {"query": "category=urgent"})
    assert response.status_code == 400
    assert "is not one of" in text_of(response)
    assert not Trigger.objects.exists()


@pytest.mark.parametrize(
    ("query", "words"),
    [("", "This field is required"), ("category", "field=value"), ("sort=id", "cannot be part")],
)
def test_a_query_that_is_no_filter_is_refused_before_asking_xurrent(
    editor_client, connection, gateway, query, words
):
    response = editor_client.post(tab_url(connection, "add_trigger"), {"query": query})
    assert response.status_code == 400
    assert words in text_of(response)
    assert gateway.calls["list"] == 0
    assert not Trigger.objects.exists()


def test_a_query_that_cannot_be_checked_is_not_saved(editor_client, connection, gateway):
    gateway.fail_next("list", "unreachable")
    response = editor_client.post(tab_url(connection, "add_trigger"), {"query": "category=rfc"})
    assert response.status_code == 400
    assert "could not be checked, so it was not saved" in text_of(response)
    assert not Trigger.objects.exists()


def test_without_a_xurrent_account_a_trigger_cannot_be_checked(editor_client, connection, node):
    node.xurrent_api_token = ""
    node.save()
    response = editor_client.post(tab_url(connection, "add_trigger"), {"query": "category=rfc"})
    assert response.status_code == 400
    assert "Xurrent account is not set up" in text_of(response)
    assert not Trigger.objects.exists()


def test_a_viewer_cannot_add_switch_edit_or_delete_a_trigger(client, connection, viewer, gateway):
    trigger = Trigger.objects.create(connection=connection, query="category=incident")
    client.force_login(viewer)
    urls = [
        (tab_url(connection, "add_trigger"), {"query": "category=rfc"}),
        (tab_url(connection, "switch_trigger", trigger_pk=trigger.pk), {"active": "off"}),
        (tab_url(connection, "edit_trigger", trigger_pk=trigger.pk), {"query": "category=rfc"}),
        (tab_url(connection, "delete_trigger", trigger_pk=trigger.pk), {}),
    ]
    for url, data in urls:
        assert client.post(url, data).status_code == 403
    assert client.get(tab_url(connection, "edit_trigger", trigger_pk=trigger.pk)).status_code == 403
    trigger.refresh_from_db()
    assert (trigger.query, trigger.active) == ("category=incident", True)
    assert gateway.calls["list"] == 0


def test_a_trigger_is_edited_with_its_new_query_checked(editor_client, connection, gateway):
    trigger = Trigger.objects.create(connection=connection, query="category=incident", active=False)
    url = tab_url(connection, "edit_trigger", trigger_pk=trigger.pk)
    form = text_of(editor_client.get(url))
    assert 'value="category=incident"' in form

    refused = editor_client.post(url, {"query": "team=twelve", "note": "x"})
    assert refused.status_code == 400 and "is not an integer" in text_of(refused)
    trigger.refresh_from_db()
    assert (trigger.query, trigger.note) == ("category=incident", "")

    response = editor_client.post(url, {"query": "team=12", "note": "desk"})
    assert response.status_code == 302
    trigger.refresh_from_db()
    assert (trigger.query, trigger.note, trigger.active) == ("team=12", "desk", False)


def test_a_trigger_is_switched_off_and_on_again(editor_client, connection):
    trigger = Trigger.objects.create(connection=connection, query="category=incident")
    url = tab_url(connection, "switch_trigger", trigger_pk=trigger.pk)
    editor_client.post(url, {"active": "off"})
    trigger.refresh_from_db()
    assert not trigger.active
    html = text_of(editor_client.get(tab_url(connection)))
    assert f'id="trigger-{trigger.pk}" data-trigger-id="{trigger.pk}" data-active="false"' in html
    editor_client.post(url, {"active": "off"})  # pressed twice: still off
    trigger.refresh_from_db()
    assert not trigger.active
    editor_client.post(url, {"active": "on"})
    trigger.refresh_from_db()
    assert trigger.active


def test_a_switch_without_on_or_off_changes_nothing(editor_client, connection):
    trigger = Trigger.objects.create(connection=connection, query="category=incident")
    response = editor_client.post(
        tab_url(connection, "switch_trigger", trigger_pk=trigger.pk),
        {"active": "maybe"},
        follow=True,
    )
    assert "Say whether to switch the trigger on or off" in text_of(response)
    trigger.refresh_from_db()
    assert trigger.active


def test_deleting_a_trigger_leaves_its_requests_synced(editor_client, connection):
    trigger = Trigger.objects.create(connection=connection, query="category=incident")
    twin = make_twin(connection, 5)
    editor_client.post(tab_url(connection, "delete_trigger", trigger_pk=trigger.pk))
    assert not Trigger.objects.exists()
    twin.refresh_from_db()
    assert twin.status == TwinStatus.OPEN


def test_a_trigger_of_another_connection_is_not_found_here(editor_client, sides):
    a, b = sides
    trigger = Trigger.objects.create(connection=b, query="category=incident")
    url = tab_url(a, "switch_trigger", trigger_pk=trigger.pk)
    assert editor_client.post(url, {"active": "off"}).status_code == 404
    trigger.refresh_from_db()
    assert trigger.active


# --- one request --------------------------------------------------------------------------------


def test_exalate_starts_syncing_a_request_by_its_id(editor_client, connection, gateway):
    request = gateway.human_creates(subject="Printer on fire", category="incident", impact="low")
    response = editor_client.post(
        tab_url(connection, "exalate"), {"exalate-request_id": f"#{request['id']}"}, follow=True
    )
    twin = Twin.objects.get(connection=connection)
    assert (twin.local_request_id, twin.status, twin.dirty) == (request["id"], "open", True)
    assert f"Request #{request['id']} is exalated" in text_of(response)
    assert f'data-local-id="{request["id"]}"' in text_of(response)


def test_exalating_a_synced_request_again_syncs_it_again(editor_client, connection, gateway):
    request = gateway.human_creates(subject="Again", category="incident", impact="low")
    twin = make_twin(connection, request["id"])
    response = editor_client.post(
        tab_url(connection, "exalate"), {"exalate-request_id": request["id"]}, follow=True
    )
    assert "was synced already: it is synced again now" in text_of(response)
    twin.refresh_from_db()
    assert twin.dirty and Twin.objects.count() == 1


@pytest.mark.parametrize(
    ("value", "words"),
    [("", "This field is required"), ("abc", "Enter a request id"), ("-4", "Enter a request id")],
)
def test_exalate_refuses_what_is_not_a_request_id(editor_client, connection, gateway, value, words):
    response = editor_client.post(tab_url(connection, "exalate"), {"exalate-request_id": value})
    assert response.status_code == 400
    assert words in text_of(response)
    assert not Twin.objects.exists()


def test_exalate_refuses_an_unknown_request_id_with_xurrents_word(
    editor_client, connection, gateway
):
    response = editor_client.post(tab_url(connection, "exalate"), {"exalate-request_id": "99"})
    assert response.status_code == 400
    assert "Xurrent has no request #99." in text_of(response)
    assert 'value="99"' in text_of(response)
    assert not Twin.objects.exists()


def test_exalate_on_a_deactivated_xurrent_or_a_pending_connection_is_refused(
    editor_client, connection, gateway
):
    gateway.fail_next("get", "unreachable")
    request = gateway.human_creates(subject="x", category="incident", impact="low")
    response = editor_client.post(
        tab_url(connection, "exalate"), {"exalate-request_id": request["id"]}
    )
    assert response.status_code == 400
    assert "could not be asked about" in text_of(response)

    connection.status = "pending"
    connection.save()
    response = editor_client.post(
        tab_url(connection, "exalate"), {"exalate-request_id": request["id"]}
    )
    assert response.status_code == 400
    assert "it cannot sync yet" in text_of(response)
    assert not Twin.objects.exists()


def test_unexalate_closes_the_twin_and_tells_the_other_side(editor_client, connection):
    twin = make_twin(connection, 12)
    response = editor_client.post(
        tab_url(connection, "unexalate"), {"unexalate-request_id": "12"}, follow=True
    )
    assert "Request #12 is unexalated" in text_of(response)
    twin.refresh_from_db()
    assert twin.status == TwinStatus.CLOSED
    assert SyncEvent.objects.get(twin=twin).action == EventAction.UNEXALATE


def test_unexalate_of_a_request_that_is_not_synced_is_refused(editor_client, connection):
    response = editor_client.post(tab_url(connection, "unexalate"), {"unexalate-request_id": "12"})
    assert response.status_code == 400
    assert "Request #12 is not synced on this connection." in text_of(response)
    assert not SyncEvent.objects.exists()


def test_a_viewer_cannot_exalate_or_unexalate(client, connection, viewer, gateway):
    twin = make_twin(connection, 12)
    client.force_login(viewer)
    assert (
        client.post(tab_url(connection, "exalate"), {"exalate-request_id": "1"}).status_code == 403
    )
    assert (
        client.post(tab_url(connection, "unexalate"), {"unexalate-request_id": "12"}).status_code
        == 403
    )
    twin.refresh_from_db()
    assert twin.status == TwinStatus.OPEN
    assert gateway.calls["get"] == 0


def test_the_actions_take_only_posts(editor_client, connection):
    for name in ("exalate", "unexalate", "bulk_exalate", "add_trigger"):
        assert editor_client.get(tab_url(connection, name)).status_code == 405


def test_a_user_with_only_the_change_permission_still_needs_the_view_permission(client, connection):
    user = make_user("changer", "change_connection")
    assert user.has_perm("connections.change_connection")
    assert not Permission.objects.filter(user=user, codename="view_connection").exists()
    client.force_login(user)
    assert (
        client.post(tab_url(connection, "exalate"), {"exalate-request_id": "1"}).status_code == 403
    )
