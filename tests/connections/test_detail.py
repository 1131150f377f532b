"""The connection page and its actions, with and without the permissions they need."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache

from connections.models import Connection, ConnectionEvent, PeerNotification
from connections.services import outbox
from nodes import client as node_client
from tests import http_servers
from tests.connections.peers import make_paired


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()


@pytest.fixture
def operator(db):
    """Sees connections and may change them, but not delete them."""
    user = get_user_model().objects.create_user("operator", "", "pw-operator-123456")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_connection", "change_connection"])
    )
    return user


def page_of(client, connection) -> str:
    response = client.get(f"/connections/{connection.id}/")
    assert response.status_code == 200
    return response.content.decode()


def messages_after(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_page_shows_both_sides_and_the_markers(admin_client, connection):
    connection.record_remote_status("deactivated")
    html = page_of(admin_client, connection)
    assert f'data-connection-id="{connection.id}"' in html
    assert 'data-status="active"' in html
    assert 'data-remote-status="deactivated"' in html
    assert "This side (acme)" in html
    assert "Remote side (globex)" in html
    assert connection.remote_url in html
    assert "Script" in html
    assert "Source" in html
    assert f'href="/connections/{connection.id}/rules/"' in html
    assert "Event history" in html
    assert "The remote side is now deactivated." in html


def test_a_private_network_peer_is_shown_as_such(admin_client, node):
    connection = make_paired(remote_url="")
    assert "private network" in page_of(admin_client, connection)


def test_the_page_never_shows_the_shared_secret(admin_client, connection):
    assert connection.shared_secret not in page_of(admin_client, connection)


def test_a_viewer_sees_no_actions(viewer_client, connection):
    html = page_of(viewer_client, connection)
    for marker in ('id="test-connection"', 'id="deactivate"', 'id="delete"'):
        assert marker not in html


def test_an_operator_sees_every_action_but_delete(client, operator, connection):
    client.force_login(operator)
    html = page_of(client, connection)
    assert 'id="test-connection"' in html
    assert 'id="deactivate"' in html
    assert 'id="delete"' not in html


@pytest.mark.parametrize("action", ["test", "deactivate", "activate", "delete"])
def test_a_viewer_cannot_run_an_action(viewer_client, connection, peer, action):
    peer.start()
    events = ConnectionEvent.objects.count()
    response = viewer_client.post(f"/connections/{connection.id}/{action}/")
    assert response.status_code == 403
    assert Connection.objects.get().status == "active"
    assert ConnectionEvent.objects.count() == events
    assert peer.received == []


@pytest.mark.parametrize("action", ["test", "deactivate", "activate", "delete"])
def test_an_anonymous_visitor_is_sent_to_log_in(client, connection, action):
    response = client.post(f"/connections/{connection.id}/{action}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert Connection.objects.get().status == "active"


@pytest.mark.parametrize("action", ["test", "deactivate", "activate"])
def test_actions_do_nothing_on_a_get(admin_client, connection, action):
    assert admin_client.get(f"/connections/{connection.id}/{action}/").status_code == 405
    assert Connection.objects.get().status == "active"


def test_deactivate_changes_this_side_and_queues_telling_the_peer(
    client, operator, connection, peer
):
    peer.start()
    client.force_login(operator)
    response = client.post(f"/connections/{connection.id}/deactivate/", follow=True)
    assert response.redirect_chain[-1][0] == f"/connections/{connection.id}/"
    assert [str(m) for m in response.context["messages"]] == [
        "The connection is deactivated on this side. The remote side will be told in a moment."
    ]
    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    connection.refresh_from_db()
    assert connection.status == "deactivated"
    assert connection.events.get(kind="deactivated").actor_user == operator
    # The page answered without calling the peer; the notification waits for the worker.
    assert peer.received == []
    html = response.content.decode()
    assert 'data-status="deactivated"' in html
    assert 'id="activate"' in html
    assert 'data-notification-state="queued"' in html
    assert "the remote side will be told in a moment that this side is now deactivated" in html
    assert outbox.deliver_pending_notifications().delivered == 1
    assert [r.body["status"] for r in peer.received] == ["deactivated"]
    assert 'id="peer-not-told"' not in page_of(client, connection)


def test_deactivate_with_the_peer_down_shows_the_retries_with_the_last_error(
    admin_client, connection
):
    response = admin_client.post(f"/connections/{connection.id}/deactivate/", follow=True)
    assert "The remote side will be told in a moment." in " ".join(messages_after(response))
    assert 'data-notification-state="queued"' in response.content.decode()
    assert outbox.deliver_pending_notifications().retrying == 1  # the worker's first try
    html = page_of(admin_client, connection)
    assert 'data-status="deactivated"' in html
    assert 'data-notification-state="retrying"' in html
    assert "Peer not told yet" in html
    assert "1 attempt so far; next try after " in html
    notification = PeerNotification.objects.get()
    assert notification.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") in html


def test_the_peer_not_told_note_reads_as_plain_sentences(admin_client, connection):
    admin_client.post(f"/connections/{connection.id}/deactivate/")
    outbox.deliver_pending_notifications()
    html = page_of(admin_client, connection)
    note = html.split('id="peer-not-told"')[1].split("</p>")[0]
    assert ".)" not in note
    assert "Last error: Could not connect to " in note


def test_a_notification_the_peer_refused_for_good_is_shown_with_its_error(
    admin_client, connection, peer
):
    peer.answer = lambda r: (401, {"code": "unknown_connection", "detail": "No such connection."})
    peer.start()
    admin_client.post(f"/connections/{connection.id}/deactivate/")
    assert outbox.deliver_pending_notifications().failed == 1
    html = page_of(admin_client, connection)
    note = html.split('id="peer-not-told"')[1].split("</p>")[0]
    assert 'data-notification-state="failed"' in note
    assert "could not be told that this side is now deactivated" in note
    assert "this node has stopped trying (1 attempt)" in note
    assert "Last error: " in note and "does not know this connection" in note
    assert "next try" not in note


def test_a_page_action_answers_at_once_even_when_the_peer_hangs(admin_client, node, settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    with http_servers.silent() as hung:
        connection = make_paired(remote_url=hung.url)
        started = time.monotonic()
        response = admin_client.post(f"/connections/{connection.id}/deactivate/")
        took = time.monotonic() - started
        assert hung.requests == []
    assert response.status_code == 302
    assert took < 1.0
    assert PeerNotification.objects.get().state == "pending"


def test_the_description_keeps_its_line_breaks_and_markup_is_escaped(admin_client, connection):
    Connection.objects.filter(pk=connection.pk).update(description="<b>first</b>\nsecond")
    html = admin_client.get(f"/connections/{connection.id}/").content.decode()
    assert "&lt;b&gt;first&lt;/b&gt;<br>second" in html


def test_activate_brings_a_deactivated_connection_back(admin_client, connection, peer):
    peer.start()
    connection.deactivate()
    response = admin_client.post(f"/connections/{connection.id}/activate/", follow=True)
    connection.refresh_from_db()
    assert connection.status == "active"
    assert "active again" in " ".join(messages_after(response))
    assert peer.received == []
    assert outbox.deliver_pending_notifications().delivered == 1
    assert peer.received[-1].body["status"] == "active"


def test_activating_an_active_connection_is_refused_with_a_message(admin_client, connection):
    response = admin_client.post(f"/connections/{connection.id}/activate/", follow=True)
    assert "Only a deactivated connection can be activated" in " ".join(messages_after(response))
    assert not PeerNotification.objects.exists()
    assert not ConnectionEvent.objects.filter(kind="activated").exists()


def test_deactivating_a_pending_connection_is_refused(admin_client, node):
    pending = make_paired(status="pending", remote_connection_id="", shared_secret="")
    response = admin_client.post(f"/connections/{pending.id}/deactivate/", follow=True)
    assert "Only an active connection" in " ".join(messages_after(response))
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_delete_asks_for_confirmation_first(admin_client, connection):
    response = admin_client.get(f"/connections/{connection.id}/delete/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Delete connection" in html
    assert 'id="confirm-delete"' in html
    assert Connection.objects.exists()


def test_an_operator_without_delete_permission_cannot_even_see_the_confirmation(
    client, operator, connection
):
    client.force_login(operator)
    assert client.get(f"/connections/{connection.id}/delete/").status_code == 403
    assert client.post(f"/connections/{connection.id}/delete/").status_code == 403
    assert Connection.objects.exists()


def test_the_delete_message_quotes_the_name_as_typed(admin_client, connection):
    Connection.objects.filter(pk=connection.pk).update(name='Bob\'s "desk"')
    response = admin_client.post(f"/connections/{connection.id}/delete/", follow=True)
    message = " ".join(messages_after(response))
    assert message.startswith('The connection \u201cBob\'s "desk"\u201d is deleted.')


def test_delete_removes_this_side_keeps_its_events_and_queues_telling_the_peer(
    admin_client, admin_user, connection, peer
):
    peer.start()
    response = admin_client.post(f"/connections/{connection.id}/delete/", follow=True)
    assert response.redirect_chain[-1][0] == "/connections/"
    assert messages_after(response) == [
        "The connection “Acme to Globex” is deleted. The remote side will be told in a moment."
    ]
    assert not Connection.objects.exists()
    event = ConnectionEvent.objects.get(kind="deleted")
    assert event.connection_name == "Acme to Globex"
    assert event.actor_user == admin_user
    assert peer.received == []
    assert PeerNotification.objects.get().status == "deleted"
    assert outbox.deliver_pending_notifications().delivered == 1
    assert [r.body["status"] for r in peer.received] == ["deleted"]


def test_test_connection_shows_the_round_trip_time_and_the_peers_status(
    admin_client, connection, peer
):
    peer.answer = lambda r: (200, {"id": "x", "name": "n", "mode": "script", "status": "active"})
    peer.start()
    response = admin_client.post(f"/connections/{connection.id}/test/", follow=True)
    [message] = messages_after(response)
    assert "The remote side answered in" in message
    assert " ms; its side is active." in message
    [received] = peer.received
    assert received.method == "GET"
    assert received.path == f"/api/v1/connections/{connection.remote_connection_id}/"
    assert received.headers["authorization"].startswith("Bearer ")
    assert "test-result" in response.content.decode()


def test_test_connection_says_when_the_peer_is_unreachable(admin_client, connection):
    response = admin_client.post(f"/connections/{connection.id}/test/", follow=True)
    [message] = messages_after(response)
    assert message.startswith("Test connection failed. Remote node unreachable")


def test_test_connection_says_when_the_peer_timed_out(admin_client, connection, peer, monkeypatch):
    monkeypatch.setattr(node_client, "READ_TIMEOUT", 0.2)
    peer.delay = 1.0
    peer.start()
    started = time.monotonic()
    response = admin_client.post(f"/connections/{connection.id}/test/", follow=True)
    assert time.monotonic() - started < 3
    [message] = messages_after(response)
    assert "Remote node timed out" in message


def test_test_connection_says_when_the_peer_rejected_our_token(admin_client, connection, peer):
    peer.answer = lambda r: (401, {"code": "invalid_signature", "detail": "Bad signature."})
    peer.start()
    response = admin_client.post(f"/connections/{connection.id}/test/", follow=True)
    [message] = messages_after(response)
    assert "rejected this node's token (invalid_signature)" in message


def test_test_connection_says_when_the_peer_does_not_know_the_connection(
    admin_client, connection, peer
):
    peer.answer = lambda r: (401, {"code": "unknown_connection", "detail": "No such thing."})
    peer.start()
    response = admin_client.post(f"/connections/{connection.id}/test/", follow=True)
    [message] = messages_after(response)
    assert "does not know this connection" in message


def test_test_connection_on_a_pending_connection_explains_there_is_no_peer_yet(admin_client, node):
    pending = make_paired(status="pending", remote_connection_id="", shared_secret="")
    response = admin_client.post(f"/connections/{pending.id}/test/", follow=True)
    [message] = messages_after(response)
    assert "has not been accepted" in message


def test_an_unknown_connection_page_is_a_404(admin_client, db):
    assert admin_client.get("/connections/7d0f6c43-1b0e-4a5c-9a53-2f1f0f6b9c11/").status_code == 404
    response = admin_client.post("/connections/7d0f6c43-1b0e-4a5c-9a53-2f1f0f6b9c11/deactivate/")
    assert response.status_code == 404


@pytest.mark.parametrize("action", ["delete", "deactivate", "activate"])
def test_an_action_on_a_connection_deleted_meanwhile_says_so_instead_of_failing(
    admin_client, connection, monkeypatch, action
):
    # The race of two presses: this request loaded the row just before the other deleted it.
    from connections.views import detail

    stale = Connection.objects.get(pk=connection.pk)
    Connection.objects.filter(pk=connection.pk).delete()
    monkeypatch.setattr(detail, "get_object_or_404", lambda *args, **kwargs: stale)
    response = admin_client.post(f"/connections/{connection.id}/{action}/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/connections/"
    [message] = messages_after(response)
    assert message.startswith("The connection \u201cAcme to Globex\u201d no longer exists")
    assert not ConnectionEvent.objects.filter(kind__in=["deleted", "deactivated"]).exists()
    assert not PeerNotification.objects.exists()


def test_delete_confirmation_for_a_private_network_peer_says_its_node_will_find_out(
    admin_client, node
):
    connection = make_paired(remote_url="")
    html = admin_client.get(f"/connections/{connection.id}/delete/").content.decode()
    assert "its node finds the connection gone the next time it asks this one" in html
    assert "this node keeps trying" not in html
    page = page_of(admin_client, connection)
    assert "it hears of either when its node next asks this one" in page
    assert "and tells the remote side" not in page


def test_a_change_waiting_for_a_private_peers_pull_is_shown_as_such(admin_client, node):
    connection = make_paired(remote_url="")
    admin_client.post(f"/connections/{connection.id}/deactivate/")
    page = page_of(admin_client, connection)
    assert 'data-notification-state="waiting-for-pull"' in page
    assert "when its node next asks this one" in page


def test_delete_confirmation_after_the_peer_deleted_its_side_says_nobody_is_told(
    admin_client, connection
):
    connection.apply_remote_status("deleted")
    html = admin_client.get(f"/connections/{connection.id}/delete/").content.decode()
    assert "already deleted its side, so nobody needs to be told" in html
    assert "this node keeps trying" not in html


def test_delete_confirmation_for_a_reachable_peer_says_it_will_be_told(admin_client, connection):
    html = admin_client.get(f"/connections/{connection.id}/delete/").content.decode()
    assert "The remote side is told that the connection was deleted here" in html
    assert "and tells the remote side" in page_of(admin_client, connection)


def test_activating_after_the_peer_deleted_its_side_says_why_it_cannot(admin_client, connection):
    connection.apply_remote_status("deleted")
    response = admin_client.post(f"/connections/{connection.id}/activate/", follow=True)
    [message] = messages_after(response)
    assert message == (
        "Only a deactivated connection can be activated; "
        "this one is in error (deleted on the remote side)."
    )
