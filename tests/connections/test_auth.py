"""Node-to-node tokens: what the receiver accepts, and every way it refuses."""

import time
import uuid

import jwt
import pytest
from django.core.cache import cache

from connections.auth import LEEWAY_SECONDS, sign_token, token_for
from tests.connections.peers import make_paired, peer_token


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def connection(node):
    return make_paired()


def get_side(client, connection, token, *, path_id=None):
    return client.get(
        f"/api/v1/connections/{path_id or connection.id}/",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def raw_token(connection, node, **claims):
    now = int(time.time())
    values = {
        "iss": str(connection.remote_uid),
        "aud": str(node.uid),
        "conn": str(connection.id),
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    values = {k: v for k, v in values.items() if v is not None}
    return jwt.encode(values, connection.shared_secret, algorithm="HS256")


def assert_refused(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    assert set(body) == {"code", "detail"}


def test_a_good_token_reads_this_side_of_the_connection(client, connection):
    response = get_side(client, connection, peer_token(connection))
    assert response.status_code == 200
    assert response.json() == {
        "id": str(connection.id),
        "name": "Acme to Globex",
        "mode": "script",
        "status": "active",
    }


def test_the_answer_never_carries_the_shared_secret(client, connection):
    response = get_side(client, connection, peer_token(connection))
    assert connection.shared_secret not in response.content.decode()


def test_a_call_without_a_token_is_refused_with_401(client, connection):
    response = client.get(f"/api/v1/connections/{connection.id}/")
    assert_refused(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_signed_with_another_key_is_refused(client, connection):
    token = peer_token(connection, key="another-key-" + "x" * 40)
    assert_refused(get_side(client, connection, token), 401, "invalid_signature")


def test_a_token_for_another_node_is_refused(client, connection):
    token = peer_token(connection, audience=str(uuid.uuid4()))
    assert_refused(get_side(client, connection, token), 403, "wrong_audience")


def test_a_token_from_another_node_than_the_peer_is_refused(client, connection):
    token = peer_token(connection, issuer=str(uuid.uuid4()))
    assert_refused(get_side(client, connection, token), 403, "wrong_issuer")


def test_an_expired_token_is_refused(client, connection, node):
    past = int(time.time()) - 300
    token = raw_token(connection, node, iat=past, exp=past + 60)
    assert_refused(get_side(client, connection, token), 401, "token_expired")


def test_a_token_just_past_its_expiry_passes_within_the_clock_leeway(client, connection, node):
    now = int(time.time())
    token = raw_token(connection, node, iat=now - 70, exp=now - LEEWAY_SECONDS + 10)
    assert get_side(client, connection, token).status_code == 200


def test_a_token_valid_for_longer_than_a_minute_is_refused(client, connection, node):
    now = int(time.time())
    token = raw_token(connection, node, exp=now + 3600)
    assert_refused(get_side(client, connection, token), 401, "invalid_token")


def test_a_token_issued_in_the_future_is_refused(client, connection, node):
    now = int(time.time())
    token = raw_token(connection, node, iat=now + 600, exp=now + 630)
    assert_refused(get_side(client, connection, token), 401, "invalid_token")


def test_a_token_issued_more_than_two_minutes_ago_is_refused_whatever_its_expiry(
    client, connection, node
):
    now = int(time.time())
    token = raw_token(connection, node, iat=now - 600, exp=now + 30)
    assert_refused(get_side(client, connection, token), 401, "token_expired")


def test_a_token_whose_expiry_is_more_than_a_minute_after_its_issue_is_refused(
    client, connection, node
):
    # Within a minute and a half of now, but valid for 80 seconds.
    now = int(time.time())
    token = raw_token(connection, node, iat=now - 50, exp=now + 30)
    assert_refused(get_side(client, connection, token), 401, "invalid_token")


def test_a_token_issued_slightly_in_the_future_passes_within_the_clock_skew(
    client, connection, node
):
    now = int(time.time())
    token = raw_token(connection, node, iat=now + LEEWAY_SECONDS - 10, exp=now + 60)
    assert get_side(client, connection, token).status_code == 200


@pytest.mark.parametrize("extra", [[], ["another-node"]], ids=["alone", "with another"])
def test_a_token_whose_audience_is_a_list_is_refused(client, connection, node, extra):
    token = raw_token(connection, node, aud=[str(node.uid), *extra])
    assert_refused(get_side(client, connection, token), 401, "invalid_token")


@pytest.mark.parametrize("claim", ["iat", "exp"])
def test_a_token_whose_times_are_not_numbers_is_refused(client, connection, node, claim):
    token = raw_token(connection, node, **{claim: True})
    assert get_side(client, connection, token).status_code == 401


def test_a_token_is_never_accepted_twice(client, connection):
    token = peer_token(connection)
    assert get_side(client, connection, token).status_code == 200
    assert_refused(get_side(client, connection, token), 401, "token_replayed")


def test_the_replay_guard_refuses_the_same_jti_under_a_new_signature(client, connection, node):
    jti = uuid.uuid4().hex
    assert get_side(client, connection, raw_token(connection, node, jti=jti)).status_code == 200
    again = raw_token(connection, node, jti=jti)  # a new signature, the same jti
    assert_refused(get_side(client, connection, again), 401, "token_replayed")


def test_a_replay_is_refused_by_another_worker_whose_cache_never_saw_the_token(client, connection):
    token = peer_token(connection)
    assert get_side(client, connection, token).status_code == 200
    cache.clear()  # what a second worker process with its own local-memory cache sees
    assert_refused(get_side(client, connection, token), 401, "token_replayed")


def test_used_token_ids_are_forgotten_once_their_tokens_have_expired(client, connection, node):
    from datetime import timedelta

    from django.utils import timezone

    from connections.models import UsedToken

    UsedToken.objects.create(digest="0" * 64, expires_at=timezone.now() - timedelta(seconds=1))
    assert get_side(client, connection, peer_token(connection)).status_code == 200
    assert not UsedToken.objects.filter(digest="0" * 64).exists()
    assert UsedToken.objects.count() == 1
    assert len(UsedToken.objects.get().digest) == 64


def test_a_token_for_an_unknown_connection_is_refused(client, connection):
    stranger = str(uuid.uuid4())
    token = peer_token(connection, connection_id=stranger)
    response = get_side(client, connection, token, path_id=stranger)
    assert_refused(response, 401, "unknown_connection")


def test_a_token_naming_a_connection_id_that_is_not_a_uuid_is_refused(client, connection):
    token = peer_token(connection, connection_id="'; drop table --")
    assert_refused(get_side(client, connection, token), 401, "unknown_connection")


def test_a_pending_connection_accepts_no_token(client, node):
    pending = make_paired(status="pending", shared_secret="")
    response = get_side(client, pending, peer_token(pending, key="k" * 43))
    assert_refused(response, 401, "unknown_connection")


def test_a_token_for_one_connection_cannot_read_another(client, connection):
    other = make_paired(name="Other", remote_uid=connection.remote_uid)
    token = peer_token(connection)
    assert_refused(get_side(client, connection, token, path_id=other.id), 403, "wrong_connection")


@pytest.mark.parametrize("missing", ["iss", "aud", "iat", "exp", "jti"])
def test_a_token_missing_a_claim_is_refused(client, connection, node, missing):
    token = raw_token(connection, node, **{missing: None})
    response = get_side(client, connection, token)
    assert response.status_code in (401, 403)
    assert response.json()["code"] in ("invalid_token", "wrong_audience", "wrong_issuer")


def test_an_unsigned_token_is_refused(client, connection, node):
    claims = jwt.decode(raw_token(connection, node), options={"verify_signature": False})
    token = jwt.encode(claims, None, algorithm="none")
    assert_refused(get_side(client, connection, token), 401, "invalid_token")


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer not.a.jwt", "Basic dXNlcjpwdw==", "Bearer a b", "Bearer é"]
)
def test_a_malformed_authorization_header_is_refused(client, connection, header):
    response = client.get(f"/api/v1/connections/{connection.id}/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_token_for_signs_what_the_peer_expects(connection, node):
    claims = jwt.decode(
        token_for(connection),
        connection.shared_secret,
        algorithms=["HS256"],
        audience=str(connection.remote_uid),
    )
    assert claims["iss"] == str(node.uid)
    assert claims["conn"] == connection.remote_connection_id
    assert 0 < claims["exp"] - claims["iat"] <= 60
    assert len(claims["jti"]) >= 16
    assert jwt.get_unverified_header(token_for(connection)) == {"alg": "HS256", "typ": "JWT"}


def test_every_token_gets_its_own_id(connection):
    assert (
        len(
            {
                jwt.decode(token_for(connection), options={"verify_signature": False})["jti"]
                for _ in range(50)
            }
        )
        == 50
    )


def test_nothing_is_signed_without_a_key():
    with pytest.raises(jwt.InvalidKeyError):
        sign_token(key="", issuer="a", audience="b", connection_id="c")
