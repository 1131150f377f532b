"""The webhook receiver: a hint is kept for a call of this node's account, signed with the
policy key when one is set; anything else is refused and changes nothing."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django import db
from django.test import Client

from nodes import wakeup
from nodes.models import GeneralSettings
from xurrent.models import WebhookHint
from xurrent.services import request_digest

WEBHOOK = "/api/v1/xurrent/webhook/"
ACCOUNT = "widget-data"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def policy_key():
    return new_key()


@pytest.fixture(scope="module")
def other_key():
    return new_key()


def pem(private_key) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def account(node) -> GeneralSettings:
    node.xurrent_account = ACCOUNT
    node.save()
    return node


@pytest.fixture
def signed_account(account, policy_key) -> GeneralSettings:
    account.xurrent_webhook_key = pem(policy_key)
    account.save()
    return account


@pytest.fixture
def api():
    # Xurrent has no session and no CSRF token: the receiver must not ask for one.
    return Client(enforce_csrf_checks=True)


def body(**changes) -> dict:
    return {
        "webhook_id": 7,
        "account": ACCOUNT,
        "event": "request.update",
        "object_id": 4321,
        "person_id": 12,
        "person_name": "Howard Tanner",
        "payload": {"subject": "<script>alert(1)</script>", "status": "in_progress"},
        **changes,
    }


def signed(data: dict, key, **claims) -> dict:
    now = int(time.time())
    all_claims = {
        "iss": "https://api.xurrent.com/v1/webhook_policies/1",
        "aud": "exalate",
        "sub": "7",
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "data": data,
        **claims,
    }
    return {"jwt": jwt.encode(all_claims, key, algorithm="RS256")}


def post(api, data, **extra):
    return api.post(WEBHOOK, data, content_type="application/json", **extra)


def assert_refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    answer = response.json()
    assert answer["code"] == code
    assert answer["detail"]
    assert not WebhookHint.objects.exists()
    return answer


def test_a_plain_webhook_is_kept_as_a_hint_without_its_content(api, account):
    response = post(api, body())
    assert response.status_code == 202
    assert response.json() == {"status": "received"}
    hint = WebhookHint.objects.get()
    assert (hint.event, hint.object_id, hint.account) == ("request.update", 4321, ACCOUNT)
    assert not hint.processed
    assert WebhookHint.objects.pending().get() == hint
    stored = json.dumps([getattr(hint, f.attname) for f in WebhookHint._meta.fields], default=str)
    assert "alert" not in stored and "Howard" not in stored


def test_a_kept_webhook_wakes_the_workers_once_it_is_stored(
    api, account, monkeypatch, django_capture_on_commit_callbacks
):
    woken = []
    monkeypatch.setattr(wakeup, "_notify", lambda: woken.append(WebhookHint.objects.count()))
    monkeypatch.setattr(db.connection, "vendor", "postgresql")
    with django_capture_on_commit_callbacks(execute=True):
        assert post(api, body()).status_code == 202
    assert woken == [1]  # after the hint was stored, so the worker finds it


def test_a_refused_webhook_wakes_no_worker(api, account, monkeypatch):
    woken = []
    monkeypatch.setattr(wakeup, "_notify", lambda: woken.append(True))
    monkeypatch.setattr(db.connection, "vendor", "postgresql")
    assert_refused(post(api, body(account="someone-else")), 403, "wrong_account")
    assert woken == []


def test_of_a_requests_payload_only_a_digest_is_kept_and_only_for_a_create_or_update(api, account):
    request = {"id": 4321, "subject": "VPN", "updated_at": "2026-11-28T10:00:00Z"}
    post(api, body(payload=request))
    post(api, body(event="request.note-added", payload={**request, "note": {"id": 1}}))
    update, note_added = WebhookHint.objects.order_by("id")
    assert update.digest == request_digest(request)
    assert len(update.digest) == 64
    assert note_added.digest == ""  # a note: always read back


def test_the_create_of_a_copy_this_node_made_is_answered_but_not_kept(api, account, monkeypatch):
    woken = []
    monkeypatch.setattr(wakeup, "_notify", lambda: woken.append(True))
    monkeypatch.setattr(db.connection, "vendor", "postgresql")
    copy = {"id": 4321, "subject": "VPN", "source": "exalate", "sourceID": str(uuid.uuid4())}
    response = post(api, body(event="request.create", payload=copy))
    assert response.status_code == 202
    assert response.json() == {"status": "received"}
    # The engine recorded the request when its create was answered: nothing to read back.
    assert not WebhookHint.objects.exists()
    assert woken == []


@pytest.mark.parametrize(
    "event, payload",
    [
        # An update of a copy: a person may have changed it.
        ("request.update", {"id": 1, "source": "exalate", "sourceID": str(uuid.uuid4())}),
        # Made by someone else, or by this source without a twin's id.
        ("request.create", {"id": 1, "source": "portal", "sourceID": str(uuid.uuid4())}),
        ("request.create", {"id": 1, "source": "exalate", "sourceID": "INC-7"}),
        ("request.create", {"id": 1, "source": "exalate"}),
        ("request.create", "not an object"),
    ],
)
def test_every_other_webhook_is_kept(api, account, event, payload):
    assert post(api, body(event=event, payload=payload)).status_code == 202
    assert WebhookHint.objects.get().event == event


def test_a_webhook_signed_with_the_policy_key_is_kept(api, signed_account, policy_key):
    response = post(api, signed(body(event="request.note-added"), policy_key))
    assert response.status_code == 202
    hint = WebhookHint.objects.get()
    assert (hint.event, hint.object_id) == ("request.note-added", 4321)


def test_a_webhook_signed_with_another_key_is_refused(api, signed_account, other_key):
    answer = assert_refused(post(api, signed(body(), other_key)), 401, "invalid_signature")
    assert "does not match the webhook policy key" in answer["detail"]


def test_an_unsigned_webhook_is_refused_when_a_policy_key_is_set(api, signed_account):
    answer = assert_refused(post(api, body()), 401, "signature_required")
    assert '{"jwt"' in answer["detail"]


def test_a_webhook_signed_with_none_instead_of_rs256_is_refused(api, signed_account):
    token = jwt.encode({"iat": int(time.time()), "data": body()}, None, algorithm="none")
    assert_refused(post(api, {"jwt": token}), 401, "invalid_signature")


def test_a_webhook_whose_signature_has_expired_is_refused(api, signed_account, policy_key):
    old = int(time.time()) - 3600
    data = signed(body(), policy_key, iat=old, nbf=old, exp=old + 300)
    assert_refused(post(api, data), 401, "signature_expired")


def test_a_webhook_signed_for_later_is_refused(api, signed_account, policy_key):
    later = int(time.time()) + 3600
    data = signed(body(), policy_key, iat=later - 10, nbf=later, exp=later + 300)
    assert_refused(post(api, data), 401, "signature_not_yet_valid")


def test_a_small_clock_difference_is_allowed(api, signed_account, policy_key):
    soon = int(time.time()) + 20
    response = post(api, signed(body(), policy_key, iat=soon, nbf=soon, exp=soon + 300))
    assert response.status_code == 202


def test_a_webhook_for_another_account_is_refused(api, account):
    answer = assert_refused(post(api, body(account="someone-else")), 403, "wrong_account")
    assert "someone-else" in answer["detail"]


def test_a_signed_webhook_for_another_account_is_refused(api, signed_account, policy_key):
    assert_refused(
        post(api, signed(body(account="someone-else"), policy_key)), 403, "wrong_account"
    )


def test_a_node_without_an_account_takes_no_webhooks(api, node):
    assert_refused(post(api, body()), 403, "no_account")


@pytest.mark.parametrize(
    "data",
    [
        [],
        "request.update",
        {},
        body(event=""),
        body(event="DROP TABLE"),
        body(event="x" * 200 + ".update"),
        body(object_id="four"),
        body(object_id=0),
        body(object_id=2**70),
        body(account=None),
        {"jwt": 12},
        {"jwt": "not-a-jwt"},
    ],
)
def test_a_body_that_is_no_webhook_is_refused_with_400(api, account, data):
    assert_refused(post(api, data), 400, "invalid_request")


def test_a_body_that_is_not_json_is_refused_with_400(api, account):
    response = api.post(WEBHOOK, "{not json", content_type="application/json")
    assert_refused(response, 400, "invalid_request")


def test_only_post_is_answered(api, account):
    assert api.get(WEBHOOK).status_code == 405


def test_webhooks_are_throttled_per_sending_address(api, account, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"xurrent_webhook": "3/min"},
    }
    for _ in range(3):
        assert post(api, body()).status_code == 202
    response = post(api, body())
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    assert post(api, body(), REMOTE_ADDR="10.9.8.7").status_code == 202
    assert WebhookHint.objects.count() == 4


def test_the_webhook_is_in_the_api_schema(client, db):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"][WEBHOOK]["post"]
    assert {"202", "400", "401", "403"} <= set(operation["responses"])
