"""The issuer side: `POST /api/v1/invitations/accept/`, every rule of DESIGN.md §5."""

import base64
import json
import threading
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection as db_connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections.auth import sign_token
from connections.models import ConnectionEvent, EventKind
from invitations import keys
from invitations.code import decode
from invitations.models import Invitation, hash_token
from invitations.services.issuing import issue_invitation
from nodes.models import GeneralSettings

ACCEPT = "/api/v1/invitations/accept/"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def derived_secret(acceptor_key, answer: dict, acceptor: dict, code: str) -> str:
    """What the acceptor derives from the issuer's answer (DESIGN.md §5)."""
    return keys.derive_secret(
        acceptor_key,
        answer["public_key"],
        token_hash=hash_token(decode(code).token),
        source_connection_id=answer["connection"]["id"],
        destination_connection_id=acceptor["connection_id"],
    )


def confirm(connection, acceptor, secret, client=None):
    """The acceptor's first signed call: its side exists, so the issuer's goes active."""
    token = sign_token(
        key=secret,
        issuer=acceptor["uid"],
        audience=str(GeneralSettings.load().uid),
        connection_id=str(connection.id),
    )
    return (client or Client()).post(
        f"/api/v1/connections/{connection.id}/status/",
        {"status": "active"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_accept_pairs_the_source_side_and_answers_with_public_values_only(
    post_accept, invite, acceptor, acceptor_key, node
):
    connection, code = invite()
    response = post_accept({"code": code, "acceptor": acceptor})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"connection", "public_key"}  # no secret on the wire
    assert body["connection"] == {
        "id": str(connection.id),
        "name": "Support sync",
        "description": "Incidents between the two service desks.",
        "mode": "script",
        "status": "pending",
        "source": {
            "uid": str(node.uid),
            "url": "http://testserver",
            "short_name": "desk-a",
            "platform": "xurrent",
        },
        "destination": {
            "uid": acceptor["uid"],
            "url": "https://desk-b.example.com",
            "short_name": "desk-b",
            "platform": "xurrent",
        },
    }
    connection.refresh_from_db()
    # Both sides derive the same secret from the two public keys.
    secret = derived_secret(acceptor_key, body, acceptor, code)
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert connection.shared_secret == secret
    assert secret not in response.content.decode()
    # Paired, but pending until the acceptor confirms it stored its side.
    assert connection.status == "pending"
    assert connection.awaits_confirmation and not connection.awaits_acceptance
    assert connection.activated_at is None
    assert str(connection.remote_uid) == acceptor["uid"]
    assert connection.remote_connection_id == acceptor["connection_id"]
    invitation = connection.invitations.get()
    assert invitation.accepted_at is not None
    assert invitation.acceptor_short_name == "desk-b"
    # Pairing is one state change: one event.
    paired = connection.events.get(kind=EventKind.ACCEPTED)
    assert (paired.from_status, paired.to_status) == ("pending", "pending")
    assert paired.actor == "remote node desk-b"


def test_the_acceptors_first_signed_call_makes_the_source_side_active(
    post_accept, invite, acceptor, acceptor_key
):
    connection, code = invite()
    answer = post_accept({"code": code, "acceptor": acceptor}).json()
    secret = derived_secret(acceptor_key, answer, acceptor, code)
    assert confirm(connection, acceptor, secret).status_code == 200
    connection.refresh_from_db()
    assert connection.status == "active" and connection.activated_at is not None
    assert connection.remote_status == "active"
    confirmed = connection.events.get(kind=EventKind.ACTIVATED)
    assert (confirmed.from_status, confirmed.to_status) == ("pending", "active")


def test_a_confirmation_signed_with_another_key_changes_nothing(post_accept, invite, acceptor):
    connection, code = invite()
    post_accept({"code": code, "acceptor": acceptor})
    assert confirm(connection, acceptor, "x" * 43).status_code == 401
    connection.refresh_from_db()
    assert connection.status == "pending"


def test_the_acceptor_may_rename_its_side_of_the_connection(post_accept, invite, acceptor):
    connection, code = invite()
    response = post_accept({"code": code, "acceptor": {**acceptor, "short_name": "helpdesk"}})
    assert response.status_code == 200
    connection.refresh_from_db()
    assert connection.remote_short_name == "helpdesk"


def test_accept_is_idempotent_for_the_same_acceptor(post_accept, invite, acceptor):
    connection, code = invite()
    first = post_accept({"code": code, "acceptor": acceptor})
    second = post_accept({"code": code, "acceptor": acceptor})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert ConnectionEvent.objects.filter(connection=connection, kind="accepted").count() == 1


def test_a_replay_after_the_code_expired_gets_410_and_nothing_else(post_accept, invite, acceptor):
    _connection, code = invite()
    assert post_accept({"code": code, "acceptor": acceptor}).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(hours=100)):
        again = post_accept({"code": code, "acceptor": acceptor})
    body = assert_error(again, 410, "invitation_expired")
    assert set(body) == {"code", "detail"}


def test_a_replay_with_another_public_key_gets_nothing(post_accept, invite, acceptor):
    """Who saw a used code (and the acceptor's public ids) cannot get the connection."""
    connection, code = invite()
    assert post_accept({"code": code, "acceptor": acceptor}).status_code == 200
    attacker = {**acceptor, "public_key": keys.public_key_text(keys.new_private_key())}
    body = assert_error(post_accept({"code": code, "acceptor": attacker}), 409, "invitation_used")
    assert "public_key" not in body
    connection.refresh_from_db()
    assert connection.invitations.get().acceptor_public_key == acceptor["public_key"]


def test_a_replay_by_the_real_acceptor_recovers_a_lost_answer(
    post_accept, invite, acceptor, acceptor_key
):
    connection, code = invite()
    first = post_accept({"code": code, "acceptor": acceptor}).json()  # "lost"
    again = post_accept({"code": code, "acceptor": acceptor}).json()
    assert again == first
    secret = derived_secret(acceptor_key, again, acceptor, code)
    assert confirm(connection, acceptor, secret).status_code == 200
    connection.refresh_from_db()
    assert connection.status == "active"


def test_a_public_key_that_is_not_one_is_refused(post_accept, invite, acceptor):
    connection, code = invite()
    for bad in ["", "abc", "A" * 43 + "!", base64.urlsafe_b64encode(b"x" * 31).decode()]:
        response = post_accept({"code": code, "acceptor": {**acceptor, "public_key": bad}})
        body = assert_error(response, 400, "invalid_request")
        assert "public_key" in body["errors"]["acceptor"]
    # The all-zero key would agree on a known secret: refused before anything is stored.
    zero = base64.urlsafe_b64encode(bytes(32)).decode().rstrip("=")
    assert_error(
        post_accept({"code": code, "acceptor": {**acceptor, "public_key": zero}}),
        400,
        "invalid_request",
    )
    connection.refresh_from_db()
    assert connection.awaits_acceptance


def test_a_replay_is_refused_once_the_acceptor_deleted_its_side(post_accept, invite, acceptor):
    connection, code = invite()
    assert post_accept({"code": code, "acceptor": acceptor}).status_code == 200
    connection.refresh_from_db()
    connection.apply_remote_status("deleted")
    again = post_accept({"code": code, "acceptor": acceptor})
    body = assert_error(again, 409, "invitation_used")
    assert "since deleted" in body["detail"]
    assert "public_key" not in again.json()
    connection.refresh_from_db()
    assert connection.status == "error"


def test_accept_rejects_a_code_used_by_another_acceptor(post_accept, invite, acceptor):
    connection, code = invite()
    assert post_accept({"code": code, "acceptor": acceptor}).status_code == 200
    other_connection = {**acceptor, "connection_id": str(uuid.uuid4())}
    assert_error(post_accept({"code": code, "acceptor": other_connection}), 409, "invitation_used")
    connection.refresh_from_db()
    assert connection.remote_connection_id == acceptor["connection_id"]


def test_accept_rejects_an_expired_code(post_accept, invite, acceptor):
    connection, code = invite()
    with time_machine.travel(timezone.now() + timedelta(hours=73)):
        assert_error(post_accept({"code": code, "acceptor": acceptor}), 410, "invitation_expired")
    connection.refresh_from_db()
    assert connection.status == "pending"
    assert connection.shared_secret == ""


def test_accept_rejects_a_revoked_code(post_accept, invite, acceptor):
    connection, old_code = invite()
    _invitation, new_code = issue_invitation(connection)
    assert_error(post_accept({"code": old_code, "acceptor": acceptor}), 410, "invitation_revoked")
    assert post_accept({"code": new_code, "acceptor": acceptor}).status_code == 200


def test_accept_rejects_a_code_for_a_deactivated_pending_connection(post_accept, invite, acceptor):
    connection, code = invite()
    connection.deactivate(reason="Not needed any more.")
    assert_error(post_accept({"code": code, "acceptor": acceptor}), 410, "invitation_revoked")


def test_accept_rejects_the_wrong_destination(post_accept, invite, acceptor):
    connection, code = invite()
    stranger = {**acceptor, "uid": str(uuid.uuid4())}
    assert_error(post_accept({"code": code, "acceptor": stranger}), 403, "wrong_destination")
    connection.refresh_from_db()
    assert connection.status == "pending"


def test_any_acceptor_may_accept_a_code_made_without_a_url(post_accept, invite, acceptor):
    connection, code = invite(remote_url="", remote_uid=None)
    private = {**acceptor, "uid": str(uuid.uuid4()), "url": None}
    response = post_accept({"code": code, "acceptor": private})
    assert response.status_code == 200
    assert response.json()["connection"]["destination"]["url"] is None
    connection.refresh_from_db()
    assert connection.remote_url == ""
    assert str(connection.remote_uid) == private["uid"]


def test_accept_answers_not_found_for_an_unknown_token(post_accept, invite, acceptor):
    connection, code = invite()
    connection.delete()
    assert_error(post_accept({"code": code, "acceptor": acceptor}), 404, "invitation_not_found")


def test_accept_rejects_a_mode_the_licence_no_longer_allows(post_accept, invite, acceptor, node):
    connection, code = invite(mode="script")
    node.license = "free"
    node.save()
    assert_error(post_accept({"code": code, "acceptor": acceptor}), 409, "mode_unavailable")
    connection.refresh_from_db()
    assert connection.status == "pending"
    assert not Invitation.objects.filter(accepted_at__isnull=False).exists()


def test_the_checks_run_in_the_documented_order(post_accept, invite, acceptor, node):
    # Revoked, expired, for someone else and on a licence without the mode all at once:
    # the first rule (revoked) decides.
    connection, code = invite()
    issue_invitation(connection)
    node.license = "free"
    node.save()
    stranger = {**acceptor, "uid": str(uuid.uuid4())}
    with time_machine.travel(timezone.now() + timedelta(hours=100)):
        assert_error(post_accept({"code": code, "acceptor": stranger}), 410, "invitation_revoked")


@pytest.mark.parametrize(
    "damage",
    [
        lambda code: code[:-1],
        lambda code: code + "A",
        lambda code: code[:10] + ("B" if code[10] != "B" else "C") + code[11:],
        lambda code: code.replace(".", ""),
    ],
    ids=["missing", "extra", "changed", "no-separator"],
)
def test_accept_rejects_a_damaged_code(post_accept, invite, acceptor, damage):
    connection, code = invite()
    body = assert_error(
        post_accept({"code": damage(code), "acceptor": acceptor}), 400, "invalid_code"
    )
    assert "copy the code again in full" in body["detail"].lower()
    connection.refresh_from_db()
    assert connection.status == "pending"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": "x"},
        {"acceptor": {}},
        [],
        "a string",
        17,
        None,
        {"code": 12, "acceptor": "nobody"},
        {"code": ["a"], "acceptor": []},
        {"code": "x", "acceptor": {"uid": "not-a-uuid"}},
        {"code": "x" * 100_000, "acceptor": {}},
    ],
)
def test_malformed_bodies_get_invalid_request(post_accept, db, body):
    response = post_accept(json.dumps(body))
    body = assert_error(response, 400, "invalid_request")
    assert "errors" in body


@pytest.mark.parametrize(
    "field, value",
    [
        ("uid", 12345),
        ("uid", ""),
        ("url", "ftp://desk-b.example.com"),
        ("url", "not a url"),
        ("url", 5),
        ("short_name", "x" * 41),
        ("short_name", ""),
        ("short_name", "nul\x00byte"),
        ("short_name", "\ud800"),
        ("platform", "p" * 21),
        ("platform", ["xurrent"]),
        ("connection_id", "has spaces"),
        ("connection_id", "c" * 65),
        ("connection_id", None),
    ],
)
def test_a_wrong_acceptor_field_is_named_in_the_errors(post_accept, invite, acceptor, field, value):
    connection, code = invite()
    response = post_accept({"code": code, "acceptor": {**acceptor, field: value}})
    body = assert_error(response, 400, "invalid_request")
    assert field in body["errors"]["acceptor"]
    connection.refresh_from_db()
    assert connection.status == "pending"


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b"\xff\xfe", b'{"code": "a", "acceptor": {"uid": NaN}}'],
)
def test_bodies_that_are_not_json_get_invalid_request(client, db, raw):
    response = client.post(ACCEPT, raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_a_form_encoded_body_is_refused_with_its_media_type(client, db):
    response = client.post(ACCEPT, {"code": "x"})
    assert_error(response, 415, "unsupported_media_type")


def test_a_huge_body_is_refused_without_a_server_error(client, db):
    response = client.post(
        ACCEPT, b'{"code": "' + b"A" * 3_000_000 + b'"}', content_type="application/json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"code": "x", "acceptor": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}",
    ],
)
def test_json_nested_too_deeply_gets_invalid_request_not_a_server_error(client, db, raw):
    body = assert_error(
        client.post(ACCEPT, raw, content_type="application/json"), 400, "invalid_request"
    )
    assert "nested too deeply" in body["detail"]


def test_a_body_over_the_upload_limit_is_refused_before_it_is_parsed(client, db, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    raw = b'{"code": "x", "acceptor": {"short_name": "' + b"a" * 2000 + b'"}}'
    body = assert_error(
        client.post(ACCEPT, raw, content_type="application/json"), 400, "invalid_request"
    )
    assert "larger than this node accepts" in body["detail"]
    assert set(body) == {"code", "detail"}


def test_other_methods_are_not_allowed(client, db):
    assert_error(client.get(ACCEPT), 405, "method_not_allowed")


def test_accept_is_throttled_per_client_address(post_accept, invite, acceptor, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"accept": "3/min"},
    }
    _connection, code = invite()
    stranger = {**acceptor, "uid": str(uuid.uuid4())}
    for _ in range(3):
        assert post_accept({"code": code, "acceptor": stranger}).status_code == 403
    response = post_accept({"code": code, "acceptor": stranger})
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    # Another address has its own count.
    other = post_accept({"code": code, "acceptor": acceptor}, REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 200


def test_neither_token_nor_secret_reaches_logs_or_errors(post_accept, invite, acceptor, caplog):
    connection, code = invite()
    token = code.split(".")[0]
    with caplog.at_level("DEBUG"):
        bad = post_accept({"code": code, "acceptor": {**acceptor, "uid": str(uuid.uuid4())}})
        good = post_accept({"code": code, "acceptor": acceptor})
    assert good.status_code == 200
    connection.refresh_from_db()
    secret = connection.shared_secret
    assert secret and secret not in good.content.decode()
    assert token not in bad.content.decode()
    assert code not in caplog.text and secret not in caplog.text
    connection.refresh_from_db()
    assert secret not in repr(connection)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_of_many_concurrent_accepts_exactly_one_wins(invite, acceptor, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"accept": "1000/min"},
    }
    connection, code = invite()
    contenders = 12
    barrier = threading.Barrier(contenders)
    results: list[tuple[int, dict, str]] = []
    lock = threading.Lock()

    def contend(number: int) -> None:
        mine = {**acceptor, "connection_id": f"contender-{number}"}
        try:
            barrier.wait(timeout=10)
            response = Client().post(
                ACCEPT, {"code": code, "acceptor": mine}, content_type="application/json"
            )
            with lock:
                results.append((response.status_code, response.json(), mine["connection_id"]))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == contenders
    winners = [r for r in results if r[0] == 200]
    losers = [r for r in results if r[0] != 200]
    assert len(winners) == 1
    assert all(status == 409 and body["code"] == "invitation_used" for status, body, _ in losers)
    connection.refresh_from_db()
    assert connection.awaits_confirmation
    assert connection.remote_connection_id == winners[0][2]
    assert ConnectionEvent.objects.filter(connection=connection, kind="accepted").count() == 1


def test_accepting_runs_few_queries_and_reads_the_settings_once(post_accept, invite, acceptor):
    """Settings, the locked invitation (with its connection), two updates, one event."""
    _connection, code = invite()
    with CaptureQueriesContext(db_connection) as queries:
        assert post_accept({"code": code, "acceptor": acceptor}).status_code == 200
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= 5, statements
    assert sum("generalsettings" in sql for sql in statements) == 1
