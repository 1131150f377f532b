"""The receiver's API: POST /api/v1/connections/<id>/sync/ and …/sync/ack/ (node token)."""

import uuid

import pytest

from sync.models import (
    EventState,
    InboundEvent,
    SyncEvent,
    Twin,
    TwinOrigin,
    TwinStatus,
)
from tests.connections.peers import make_paired, peer_token


@pytest.fixture
def connection(node):
    return make_paired()


def post(client, connection, body, path="sync/"):
    return client.post(
        f"/api/v1/connections/{connection.id}/{path}",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {peer_token(connection)}",
    )


def event_body(**overrides):
    return {
        "protocol": 1,
        "event": str(uuid.uuid4()),
        "twin": "70412",
        "twin_id": str(uuid.uuid4()),
        "seq": 1,
        "replica": {"summary": "VPN drops", "comments": []},
        **overrides,
    }


def test_an_event_is_stored_and_answered_202_queued_without_touching_xurrent(client, connection):
    body = event_body()
    response = post(client, connection, body)
    assert response.status_code == 202
    assert response.json() == {"event": body["event"], "state": "queued"}
    inbound = InboundEvent.objects.get()
    assert inbound.replica == body["replica"]
    twin = inbound.twin
    assert twin.status == TwinStatus.CREATING
    assert twin.origin == TwinOrigin.REMOTE
    assert twin.remote_request_id == "70412"
    assert str(twin.twin_id) == body["twin_id"]
    assert twin.local_request_id is None  # nothing was written to Xurrent yet


def test_a_repeated_event_gets_the_same_answer_and_is_stored_once(client, connection):
    body = event_body()
    first = post(client, connection, body)
    second = post(client, connection, body)
    assert second.status_code == 202
    assert second.json() == first.json()
    assert InboundEvent.objects.count() == 1


def test_the_same_uuid_with_another_body_is_a_conflict_and_changes_nothing(client, connection):
    body = event_body()
    post(client, connection, body)
    other = {**body, "replica": {"summary": "something else"}}
    response = post(client, connection, other)
    assert response.status_code == 409
    assert response.json()["code"] == "event_conflict"
    assert InboundEvent.objects.get().replica == body["replica"]


def test_another_protocol_is_refused_with_400(client, connection):
    response = post(client, connection, event_body(protocol=2))
    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_protocol"
    assert not InboundEvent.objects.exists()


def test_a_body_without_a_replica_is_refused_with_the_field(client, connection):
    body = event_body()
    del body["replica"]
    response = post(client, connection, body)
    assert response.status_code == 400
    assert "replica" in response.json()["errors"]


@pytest.mark.parametrize("status", ["deactivated", "pending"])
def test_an_inactive_connection_answers_409_connection_inactive(client, node, status):
    connection = make_paired(status=status)
    response = post(client, connection, event_body())
    assert response.status_code == 409
    assert response.json()["code"] == "connection_inactive"
    assert not InboundEvent.objects.exists()


def test_an_event_not_above_the_last_applied_seq_is_superseded(client, connection):
    twin = Twin.objects.create(
        connection=connection, origin=TwinOrigin.REMOTE, local_request_id=5, last_seq_applied=4
    )
    response = post(client, connection, event_body(twin_id=str(twin.twin_id), seq=4))
    assert response.status_code == 202
    assert response.json()["state"] == "superseded"
    assert response.json()["request_id"] == "5"


def test_an_event_for_an_unexalated_twin_answers_410(client, connection):
    twin = Twin.objects.create(
        connection=connection, origin=TwinOrigin.REMOTE, status=TwinStatus.CLOSED
    )
    response = post(client, connection, event_body(twin_id=str(twin.twin_id), seq=9))
    assert response.status_code == 410
    assert response.json()["code"] == "twin_unexalated"


def test_an_event_without_a_token_is_refused(client, connection):
    response = client.post(
        f"/api/v1/connections/{connection.id}/sync/", event_body(), content_type="application/json"
    )
    assert response.status_code == 401
    assert not InboundEvent.objects.exists()


def test_an_ack_settles_the_event_and_links_the_twin(client, connection):
    twin = Twin.objects.create(connection=connection, origin=TwinOrigin.LOCAL, local_request_id=7)
    event = SyncEvent.objects.create(
        connection=connection, twin=twin, seq=1, replica={}, state=EventState.SENT
    )
    body = {"protocol": 1, "event": str(event.uuid), "state": "applied", "request_id": "9001"}
    response = post(client, connection, body, path="sync/ack/")
    assert response.status_code == 200
    assert response.json() == {"event": str(event.uuid), "state": "applied"}
    event.refresh_from_db()
    twin.refresh_from_db()
    assert event.state == EventState.APPLIED
    assert twin.remote_request_id == "9001"


def test_a_failed_result_is_shown_here_read_only(client, connection):
    twin = Twin.objects.create(connection=connection, origin=TwinOrigin.LOCAL, local_request_id=7)
    event = SyncEvent.objects.create(
        connection=connection, twin=twin, seq=1, replica={}, state=EventState.SENT
    )
    body = {
        "event": str(event.uuid),
        "state": "failed",
        "error": "Line 3: KeyError: 'x'",
        "line": 3,
    }
    assert post(client, connection, body, path="sync/ack/").status_code == 200
    error = twin.errors.get()
    assert error.remote is True
    assert error.line == 3
    assert error.blocking is False
    twin.refresh_from_db()
    assert twin.status == TwinStatus.OPEN


def test_an_ack_for_an_unknown_event_is_404(client, connection):
    body = {"event": str(uuid.uuid4()), "state": "applied"}
    response = post(client, connection, body, path="sync/ack/")
    assert response.status_code == 404
    assert response.json()["code"] == "event_not_found"


# --- batches: several events (or results) in one call ------------------------------------


def test_a_batch_of_events_is_stored_each_twin_in_order_and_answered_per_event(client, connection):
    twin_id = str(uuid.uuid4())
    bodies = [event_body(), event_body(twin_id=twin_id), event_body(twin_id=twin_id, seq=2)]
    response = post(client, connection, {"protocol": 1, "events": bodies})
    assert response.status_code == 202
    assert response.json() == {
        "results": [{"status": 202, "event": b["event"], "state": "queued"} for b in bodies]
    }
    shared = InboundEvent.objects.filter(twin__twin_id=twin_id).order_by("id")
    assert [e.seq for e in shared] == [1, 2]  # a twin's events are stored in their order
    assert InboundEvent.objects.count() == 3
    assert Twin.objects.count() == 2


def test_a_repeated_batch_gets_the_same_answers_and_stores_nothing_twice(client, connection):
    body = {"protocol": 1, "events": [event_body(), event_body()]}
    first = post(client, connection, body)
    second = post(client, connection, body)
    assert second.json() == first.json()
    assert InboundEvent.objects.count() == 2


def test_an_event_of_a_batch_sent_alone_before_gets_its_first_answer(client, connection):
    """A sender that fell back to single calls and then batches again (or the reverse)
    is held to the same idempotency rules: same uuid, same body, same answer."""
    alone = event_body()
    post(client, connection, alone)
    conflicting = {**event_body(), "event": alone["event"]}
    body = {"protocol": 1, "events": [alone, conflicting, event_body()]}
    results = post(client, connection, body).json()["results"]
    assert results[0] == {"status": 202, "event": alone["event"], "state": "queued"}
    assert results[1]["status"] == 409
    assert results[1]["code"] == "event_conflict"
    assert results[1]["event"] == alone["event"]
    assert results[2]["state"] == "queued"
    assert InboundEvent.objects.count() == 2  # the conflicting one changed nothing


def test_a_bad_event_in_a_batch_is_refused_alone(client, connection):
    bad = event_body(replica=None)
    good = event_body()
    results = post(client, connection, {"protocol": 1, "events": [bad, good]}).json()["results"]
    assert results[0]["status"] == 400
    assert results[0]["code"] == "invalid_request"
    assert "replica" in results[0]["errors"]
    assert results[1] == {"status": 202, "event": good["event"], "state": "queued"}
    assert InboundEvent.objects.count() == 1


@pytest.mark.parametrize("events", [[], "x", [{}] * 101])
def test_a_batch_that_is_not_a_list_of_1_to_100_events_is_refused(client, connection, events):
    response = post(client, connection, {"protocol": 1, "events": events})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert not InboundEvent.objects.exists()


def test_a_batch_for_an_inactive_connection_is_refused_whole(client, node):
    connection = make_paired(status="deactivated")
    response = post(client, connection, {"protocol": 1, "events": [event_body()]})
    assert response.status_code == 409
    assert response.json()["code"] == "connection_inactive"
    assert not InboundEvent.objects.exists()


def test_a_batch_of_results_settles_each_event_and_answers_per_result(client, connection):
    twin = Twin.objects.create(connection=connection, origin=TwinOrigin.LOCAL, local_request_id=7)
    event = SyncEvent.objects.create(
        connection=connection, twin=twin, seq=1, replica={}, state=EventState.SENT
    )
    unknown = str(uuid.uuid4())
    body = {
        "protocol": 1,
        "results": [
            {"protocol": 1, "event": str(event.uuid), "state": "applied", "request_id": "9001"},
            {"protocol": 1, "event": unknown, "state": "applied"},
        ],
    }
    response = post(client, connection, body, path="sync/ack/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0] == {"status": 200, "event": str(event.uuid), "state": "applied"}
    assert results[1]["status"] == 404
    assert results[1]["code"] == "event_not_found"
    event.refresh_from_db()
    twin.refresh_from_db()
    assert event.state == EventState.APPLIED
    assert twin.remote_request_id == "9001"
    assert twin.synced_at is not None
