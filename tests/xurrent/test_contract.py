"""The calls the product makes to Xurrent, made against the simulator, and what the product
relies on in the answers: if the simulator (or this client) drifts from the contract in
shared/reference/xurrent-api.md, one of these fails.

The sync engine builds on exactly these calls: check the account; create a request marked
with its twin id (`sourceID`) and find it again by that id after a lost answer; read and
update it; add and list notes; poll `updated_at` from Xurrent's own clock; list a trigger's
matches. And Xurrent's webhooks reach the receiver, signed, over real HTTP.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from nodes.models import GeneralSettings
from tests.xurrent.conftest import ACCOUNT, NEW_REQUEST, TOKEN, fast_budget
from xurrent.client import XurrentClient, XurrentError, filters_from_query, xurrent_time
from xurrent.models import WebhookHint
from xurrent_sim.testing import running_simulator

REQUEST_FIELDS = {
    "id",
    "subject",
    "category",
    "impact",
    "status",
    "team",
    "member",
    "requested_by",
    "requested_for",
    "source",
    "sourceID",
    "custom_fields",
    "created_at",
    "updated_at",
}
NOTE_FIELDS = {"id", "person", "created_at", "text", "internal"}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_settings_check_names_the_person_and_the_account(xurrent):
    me = xurrent.me()
    assert me["id"] and me["name"]
    assert xurrent.account_info()["id"] == ACCOUNT


def test_a_request_created_with_a_twin_id_is_found_again_by_it(xurrent):
    twin_id = str(uuid.uuid4())
    created = xurrent.create_request({**NEW_REQUEST, "sourceID": twin_id})
    assert set(created) >= REQUEST_FIELDS
    assert created["source"] == "exalate"
    assert created["sourceID"] == twin_id
    assert created["team"] == {"id": 1, "name": "Service Desk"}
    # A create whose answer was lost is looked up before it is sent again.
    found = list(xurrent.list_requests({"sourceID": twin_id}))
    assert [r["id"] for r in found] == [created["id"]]
    assert list(xurrent.list_requests({"sourceID": str(uuid.uuid4())})) == []


def test_a_request_is_read_and_updated_with_only_the_changed_fields(xurrent):
    created = xurrent.create_request(NEW_REQUEST)
    read = xurrent.get_request(created["id"])
    assert read == created
    updated = xurrent.update_request(
        created["id"], {"subject": "Printer replaced", "status": "in_progress", "member_id": 2}
    )
    assert (updated["subject"], updated["status"]) == ("Printer replaced", "in_progress")
    assert updated["member"] == {"id": 2, "name": "Jo Agent"}
    assert updated["category"] == created["category"]
    assert parse_time(updated["updated_at"]) >= parse_time(created["updated_at"])


def test_notes_are_appended_public_or_internal_and_read_back(xurrent):
    created = xurrent.create_request(NEW_REQUEST)
    public = xurrent.add_note(created["id"], "<p>Replaced the toner.</p>")
    internal = xurrent.add_note(created["id"], "Invoice follows.", internal=True)
    assert set(public) >= NOTE_FIELDS
    assert public["person"]["name"] == "Integration User"
    notes = {note["id"]: note for note in xurrent.list_notes(created["id"])}
    assert notes[public["id"]]["internal"] is False
    assert notes[internal["id"]]["internal"] is True
    assert notes[public["id"]]["text"] == "<p>Replaced the toner.</p>"


def test_a_poll_reads_changes_since_a_watermark_on_xurrents_clock(xurrent, sim):
    first = xurrent.create_request(NEW_REQUEST)
    # The simulated Xurrent runs a day ahead: only its Date header tells the time there.
    sim.clock(advance=86400)
    xurrent.me()
    watermark = xurrent.last_answer.date
    assert watermark - datetime.now(UTC) > timedelta(hours=23)
    second = xurrent.create_request({**NEW_REQUEST, "subject": "Later"})
    xurrent.update_request(first["id"], {"subject": "Touched later"})
    since = {"updated_at": f">={xurrent_time(watermark - timedelta(seconds=60))}"}
    changed = list(xurrent.list_requests(since, sort="updated_at"))
    assert {r["id"] for r in changed} == {first["id"], second["id"]}
    times = [r["updated_at"] for r in changed]
    assert times == sorted(times)


def test_a_trigger_query_lists_its_matches(xurrent):
    incident = xurrent.create_request(NEW_REQUEST)
    xurrent.create_request({**NEW_REQUEST, "team_id": 2})
    xurrent.create_request({**NEW_REQUEST, "category": "rfc"})
    matches = list(xurrent.list_requests(filters_from_query("category=incident&team=1")))
    assert [r["id"] for r in matches] == [incident["id"]]


@pytest.mark.parametrize(
    ("call", "kind", "status"),
    [
        (lambda x: x.get_request(424242), "not_found", 404),
        (lambda x: x.update_request(424242, {"subject": "x"}), "not_found", 404),
        (lambda x: x.add_note(424242, "x"), "not_found", 404),
        (lambda x: x.create_request({**NEW_REQUEST, "category": "nonsense"}), "validation", 422),
        (lambda x: x.create_request({**NEW_REQUEST, "no_such_field": 1}), "validation", 422),
    ],
)
def test_refusals_come_back_as_the_kinds_the_engine_acts_on(xurrent, call, kind, status):
    with pytest.raises(XurrentError) as error:
        call(xurrent)
    assert (error.value.kind, error.value.status) == (kind, status)
    assert not error.value.retryable


# --- webhooks, from the simulator to a live node -------------------------------------------------


@pytest.fixture
def policy_key(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "policy.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public.decode()


@pytest.mark.django_db(transaction=True)
def test_signed_webhooks_of_a_change_reach_the_node_as_hints(
    live_server, policy_key, settings, tmp_path
):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    private_path, public_pem = policy_key
    node = GeneralSettings.load()
    node.xurrent_account = ACCOUNT
    node.xurrent_webhook_key = public_pem
    node.save()
    receiver = f"{live_server.url}/api/v1/xurrent/webhook/"
    with running_simulator(
        account=ACCOUNT,
        token=TOKEN,
        webhooks=[receiver],
        webhook_key=private_path,
        extra_args=["--quiet", "--webhook-retries", "1"],
    ) as signing:
        xurrent = XurrentClient(signing.url, ACCOUNT, TOKEN, budget=fast_budget())
        created = xurrent.create_request(NEW_REQUEST)
        xurrent.add_note(created["id"], "Seen.")
        assert signing.wait_for_webhooks()
        deliveries = signing.webhooks()
    assert deliveries["counts"] == {"delivered": 2}, deliveries
    hints = list(WebhookHint.objects.pending().values_list("event", "object_id", "account"))
    assert hints == [
        ("request.create", created["id"], ACCOUNT),
        ("request.note-added", created["id"], ACCOUNT),
    ], deliveries


@pytest.mark.django_db(transaction=True)
def test_webhooks_signed_with_another_key_are_refused_by_the_node(
    live_server, policy_key, settings
):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    private_path, _public = policy_key
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    node = GeneralSettings.load()
    node.xurrent_account = ACCOUNT
    node.xurrent_webhook_key = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    node.save()
    with running_simulator(
        account=ACCOUNT,
        token=TOKEN,
        webhooks=[f"{live_server.url}/api/v1/xurrent/webhook/"],
        webhook_key=private_path,
        extra_args=["--quiet", "--webhook-retries", "1"],
    ) as signing:
        xurrent = XurrentClient(signing.url, ACCOUNT, TOKEN, budget=fast_budget())
        xurrent.create_request(NEW_REQUEST)
        assert signing.wait_for_webhooks()
        summary = signing.webhooks()
    assert not WebhookHint.objects.exists()
    assert summary["counts"] == {"failed": 1}, summary
    assert summary["deliveries"][0]["status"] == 401
