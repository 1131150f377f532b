"""The peer tells this side what it did: POST /api/v1/connections/<id>/status/."""

import datetime as dt

import pytest
from django.core.cache import cache

from connections.models import ConnectionEvent, PeerNotification
from tests.connections.peers import make_paired, peer_token


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()


@pytest.fixture
def connection(node):
    return make_paired()


def report(client, connection, body, *, token=None):
    return client.post(
        f"/api/v1/connections/{connection.id}/status/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token or peer_token(connection)}",
    )


@pytest.mark.parametrize("status", ["deactivated", "active"])
def test_the_peers_status_is_recorded_as_the_remote_status(client, connection, status):
    response = report(client, connection, {"status": status, "reason": "maintenance"})
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    connection.refresh_from_db()
    assert connection.remote_status == status
    assert connection.remote_status_at is not None
    assert connection.status == "active"
    event = connection.events.get(kind="remote_status")
    assert event.actor == "remote node globex"
    assert status in event.message
    assert "maintenance" in event.message


def test_the_remote_status_shows_on_the_connection_page(client, admin_user, connection):
    report(client, connection, {"status": "deactivated"})
    client.force_login(admin_user)
    page = client.get(f"/connections/{connection.id}/").content.decode()
    assert 'data-remote-status="deactivated"' in page
    assert 'data-status="active"' in page


def test_a_report_nested_too_deeply_is_refused_and_changes_nothing(client, connection):
    response = report(client, connection, b'{"status": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_request",
        "detail": "The request body is nested too deeply.",
    }
    connection.refresh_from_db()
    assert connection.remote_status == ""


def test_deleted_on_the_remote_side_puts_this_side_in_error(client, connection):
    response = report(client, connection, {"status": "deleted"})
    assert response.status_code == 200
    connection.refresh_from_db()
    assert connection.status == "error"
    assert connection.status_reason == "deleted on the remote side"
    assert connection.remote_status == "deleted"
    error = connection.events.get(kind="error")
    assert error.to_status == "error"
    assert error.actor_remote == "globex"


def test_deleted_on_the_remote_side_cancels_what_this_side_still_had_to_tell(client, connection):
    untold = PeerNotification.for_connection(connection, "deactivated")
    report(client, connection, {"status": "deleted"})
    untold.refresh_from_db()
    assert untold.state == "cancelled"
    assert untold.signing_key == ""


def test_a_report_older_than_the_last_one_changes_nothing(client, connection):
    now = dt.datetime.now(dt.UTC)
    report(client, connection, {"status": "active", "at": now.isoformat()})
    late = report(
        client,
        connection,
        {"status": "deactivated", "at": (now - dt.timedelta(seconds=5)).isoformat()},
    )
    assert late.status_code == 200
    connection.refresh_from_db()
    assert connection.remote_status == "active"
    assert connection.events.filter(kind="remote_status").count() == 1


@pytest.mark.parametrize(
    "body",
    [{}, {"status": "paused"}, {"status": "active", "reason": "x" * 300}, {"status": 3}],
)
def test_a_bad_report_is_refused_and_changes_nothing(client, connection, body):
    events = ConnectionEvent.objects.count()
    response = report(client, connection, body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert "errors" in response.json()
    connection.refresh_from_db()
    assert connection.remote_status == ""
    assert ConnectionEvent.objects.count() == events


def test_a_report_that_is_not_json_is_refused(client, connection):
    response = client.post(
        f"/api/v1/connections/{connection.id}/status/",
        "status=active",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {peer_token(connection)}",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_a_report_without_a_valid_token_changes_nothing(client, connection):
    response = report(client, connection, {"status": "deleted"}, token="nonsense")
    assert response.status_code == 401
    connection.refresh_from_db()
    assert connection.status == "active"
    assert connection.remote_status == ""


def test_a_replayed_report_is_refused(client, connection):
    token = peer_token(connection)
    assert report(client, connection, {"status": "deactivated"}, token=token).status_code == 200
    again = report(client, connection, {"status": "deactivated"}, token=token)
    assert again.status_code == 401
    assert again.json()["code"] == "token_replayed"


def test_the_status_endpoint_only_takes_post(client, connection):
    response = client.get(
        f"/api/v1/connections/{connection.id}/status/",
        HTTP_AUTHORIZATION=f"Bearer {peer_token(connection)}",
    )
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_the_api_schema_describes_the_connection_endpoints(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/connections/{id}/status/" in schema
    assert "/api/v1/connections/{id}/" in schema
