"""The acceptor side: the Accept invitation page, with the issuer played by a fake."""

import time
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import jwt
import pytest
from django.core.management import call_command

from connections.models import Connection, EventKind
from connections.services import outbox
from invitations import code as invitation_code
from invitations import keys
from invitations.models import hash_token
from invitations.services.accepting import destination_connection_id
from nodes import client as node_client

PAGE = "/connections/accept/"
SOURCE_UID = str(uuid.uuid4())
SOURCE_CONNECTION = str(uuid.uuid4())


def make_code(node, **overrides) -> str:
    fields = {
        "source_uid": SOURCE_UID,
        "source_url": "https://desk-a.example.com",
        "source_short_name": "desk-a",
        "source_platform": "xurrent",
        "source_version": "1.0.0",
        "connection_id": SOURCE_CONNECTION,
        "name": "Support sync",
        "description": "Incidents between the two service desks.",
        "mode": "script",
        "destination_short_name": "desk-b",
        "destination_uid": str(node.uid),
        "expires_at": datetime.now(UTC) + timedelta(hours=72),
        "token": invitation_code.new_token(),
    }
    return invitation_code.encode(invitation_code.InvitationCode(**{**fields, **overrides}))


class FakeIssuer:
    """Stands in for `nodes.client.request`: records calls, answers as told. It agrees on
    the secret as a real issuer does (its own key pair, the acceptor's public key), and
    takes the acceptor's confirmation."""

    def __init__(self):
        self.calls: list[dict] = []
        self.answer: tuple[int, dict] | Exception | None = None
        self.secret = None
        self.confirmed = False

    def accepted(self, body: dict) -> tuple[int, dict]:
        acceptor = body["acceptor"]
        private = keys.new_private_key()
        self.secret = keys.derive_secret(
            private,
            acceptor["public_key"],
            token_hash=hash_token(invitation_code.decode(body["code"]).token),
            source_connection_id=SOURCE_CONNECTION,
            destination_connection_id=acceptor["connection_id"],
        )
        return 200, {
            "connection": {
                "id": SOURCE_CONNECTION,
                "name": "Support sync",
                "description": "Incidents between the two service desks, in full.",
                "mode": "script",
                "status": "pending",
                "source": {
                    "uid": SOURCE_UID,
                    "url": "https://desk-a.example.com",
                    "short_name": "desk-a",
                    "platform": "xurrent",
                },
                "destination": {
                    "uid": acceptor["uid"],
                    "url": acceptor["url"],
                    "short_name": acceptor["short_name"],
                    "platform": "xurrent",
                },
            },
            "public_key": keys.public_key_text(private),
        }

    def __call__(self, method, base_url, path, *, json_body=None, headers=None):
        self.calls.append({"method": method, "url": base_url + path, "body": json_body})
        if path.endswith("/status/"):  # the acceptor's confirmation, signed with the secret
            claims = jwt.decode(
                headers["Authorization"].split()[1],
                self.secret,
                algorithms=["HS256"],
                options={"verify_aud": False},
            )
            self.confirmed = json_body["status"] == "active" and claims["conn"] == SOURCE_CONNECTION
            return 200, {"id": SOURCE_CONNECTION, "name": "n", "mode": "script", "status": "active"}
        if isinstance(self.answer, Exception):
            raise self.answer
        if self.answer is not None:
            return self.answer
        return self.accepted(json_body)

    @property
    def accept_calls(self) -> list[dict]:
        return [call for call in self.calls if call["url"].endswith("/invitations/accept/")]


@pytest.fixture
def issuer(monkeypatch):
    fake = FakeIssuer()
    monkeypatch.setattr(node_client, "request", fake)
    return fake


def review(admin_client, code):
    return admin_client.post(PAGE, {"code": code})


def confirm(admin_client, code, short_name="desk-b"):
    return admin_client.post(PAGE, {"code": code, "local_short_name": short_name, "confirm": "1"})


def test_the_accept_page_asks_for_the_code(admin_client):
    page = admin_client.get(PAGE)
    assert page.status_code == 200
    assert 'name="code"' in page.content.decode()


def test_the_accept_page_needs_a_login(client, db):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_accept_page_needs_the_add_permission(viewer_client):
    assert viewer_client.get(PAGE).status_code == 403


@pytest.mark.parametrize(
    "damage",
    [lambda c: c[:-3], lambda c: c + "x", lambda c: c[:20] + c[21:], lambda c: c[:5] + "-" + c[6:]],
)
def test_a_damaged_code_is_caught_before_any_network_call(admin_client, node, issuer, damage):
    pasted = damage(make_code(node))
    page = review(admin_client, pasted)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Copy the code again in full" in text
    assert pasted in text  # kept in the form
    assert issuer.calls == []
    assert not Connection.objects.exists()


def test_an_empty_code_asks_to_paste_one(admin_client, node, issuer):
    page = review(admin_client, "   ")
    assert "Paste the invitation code" in page.content.decode()
    assert issuer.calls == []


def test_line_breaks_from_a_mail_client_do_not_damage_the_code(admin_client, node, issuer):
    code = make_code(node)
    wrapped = "\n".join(code[i : i + 60] for i in range(0, len(code), 60))
    page = review(admin_client, wrapped)
    assert 'id="invitation-review"' in page.content.decode()


def test_the_review_shows_what_the_code_holds(admin_client, node, issuer):
    page = review(admin_client, make_code(node))
    text = page.content.decode()
    for expected in [
        "desk-a",
        "https://desk-a.example.com",
        "Support sync",
        "Incidents between the two service desks.",
        "Script",
        'name="local_short_name"',
        'value="desk-b"',
        'name="confirm"',
    ]:
        assert expected in text
    assert issuer.calls == []
    assert not Connection.objects.exists()


def test_confirming_sets_up_an_active_destination_connection(
    admin_client, admin_user, node, issuer
):
    code = make_code(node)
    response = confirm(admin_client, code, short_name="helpdesk")
    connection = Connection.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/connections/{connection.id}/"
    assert connection.role == "destination"
    assert connection.status == "active"
    assert connection.mode == "script"
    assert connection.name == "Support sync"
    assert connection.description == "Incidents between the two service desks, in full."
    assert connection.local_short_name == "helpdesk"
    assert connection.remote_short_name == "desk-a"
    assert connection.remote_url == "https://desk-a.example.com"
    assert str(connection.remote_uid) == SOURCE_UID
    assert connection.remote_connection_id == SOURCE_CONNECTION
    assert connection.shared_secret == issuer.secret
    assert connection.created_by == admin_user
    # One save, one event: the side is made paired and active at once.
    paired = connection.events.get()
    assert (paired.kind, paired.from_status, paired.to_status) == (
        EventKind.ACCEPTED,
        "",
        "active",
    )
    assert paired.actor_user == admin_user

    [call] = issuer.accept_calls
    assert call["method"] == "POST"
    assert call["url"] == "https://desk-a.example.com/api/v1/invitations/accept/"
    assert call["body"]["code"] == code
    assert call["body"]["acceptor"] == {
        "uid": str(node.uid),
        "url": "http://testserver",
        "short_name": "helpdesk",
        "platform": "xurrent",
        "version": "1.0.0",
        "connection_id": str(connection.id),
        "public_key": call["body"]["acceptor"]["public_key"],
    }
    # The confirmation is queued with the new side, for the worker: the page did not wait
    # on the issuer a second time.
    assert issuer.calls == [call]
    [queued] = connection.notifications.all()
    assert (queued.status, queued.state, queued.attempts) == ("active", "pending", 0)
    detail = admin_client.get(response["Location"]).content.decode()
    assert (
        "The connection is set up: \u201cSupport sync\u201d is active on this side. "
        "The other side will be told in a moment, and its side goes active then."
    ) in detail
    assert 'data-status="active"' in detail
    assert issuer.secret not in detail
    # The worker then confirms, with a call signed with the secret both derived: no secret
    # was sent.
    assert outbox.deliver_pending_notifications().delivered == 1
    assert issuer.confirmed
    assert issuer.secret not in str(issuer.calls)


def test_a_private_instance_gives_no_url(admin_client, node, issuer):
    node.public = False
    node.save()
    confirm(admin_client, make_code(node))
    assert issuer.calls[0]["body"]["acceptor"]["url"] is None


MESSAGES = [
    ((410, {"code": "invitation_expired", "detail": "x"}), "regenerate the invitation"),
    ((410, {"code": "invitation_revoked", "detail": "x"}), "regenerate the invitation"),
    ((409, {"code": "invitation_used", "detail": "x"}), "already been accepted by another node"),
    ((403, {"code": "wrong_destination", "detail": "x"}), "made for another instance"),
    ((404, {"code": "invitation_not_found", "detail": "x"}), "does not know this invitation"),
    ((409, {"code": "mode_unavailable", "detail": "x"}), "no longer allows Script mode"),
    ((429, {"code": "throttled", "detail": "x"}), "wait a minute, then try again"),
    ((400, {"code": "invalid_request", "detail": "x"}), "refused the invitation"),
    (node_client.NodeError("unreachable", "no route"), "Nothing was changed on this node"),
    (node_client.NodeError("timeout", "slow"), "did not answer in time"),
    (node_client.NodeError("server_error", "boom", status=500), "had an internal error"),
    (node_client.NodeError("not_exalate", "Not a node."), "Not a node."),
    ((200, {"connection": {"id": "x"}, "secret": "short"}), "does not understand"),
]


@pytest.mark.parametrize("answer, advice", MESSAGES)
def test_each_failure_tells_the_admin_what_to_do_and_creates_nothing(
    admin_client, node, issuer, answer, advice
):
    code = make_code(node)
    issuer.answer = answer
    page = confirm(admin_client, code, short_name="my-desk")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="accept-error"' in text
    assert advice in text
    assert f'value="{code}"' in text  # the code stays in the form
    assert 'value="my-desk"' in text  # and so does the edited short name
    assert not Connection.objects.exists()


def test_a_licence_without_the_mode_is_caught_before_calling(admin_client, node, issuer):
    node.license = "free"
    node.save()
    page = review(admin_client, make_code(node, mode="script"))
    assert "licence does not allow Script mode" in page.content.decode()
    page = confirm(admin_client, make_code(node, mode="script"))
    text = page.content.decode()
    assert "Free licence does not allow" in text
    assert "General Settings" in text
    assert issuer.calls == []
    assert not Connection.objects.exists()


def test_a_code_made_for_another_node_is_caught_before_calling(admin_client, node, issuer):
    page = confirm(admin_client, make_code(node, destination_uid=str(uuid.uuid4())))
    assert "made for another instance" in page.content.decode()
    assert issuer.calls == []


def test_an_empty_short_name_is_refused_and_nothing_sent(admin_client, node, issuer):
    page = confirm(admin_client, make_code(node), short_name="  ")
    assert "This field is required" in page.content.decode()
    assert issuer.calls == []


def test_a_lost_answer_is_safe_to_retry(admin_client, node, issuer):
    code = make_code(node)
    issuer.answer = node_client.NodeError("timeout", "slow")
    confirm(admin_client, code)
    assert not Connection.objects.exists()
    issuer.answer = None
    response = confirm(admin_client, code)
    assert response.status_code == 302
    # The retry is the same acceptor to the issuer: same id, same public key.
    first, second = (call["body"]["acceptor"] for call in issuer.accept_calls)
    assert first["connection_id"] == second["connection_id"] == str(Connection.objects.get().id)
    assert first["public_key"] == second["public_key"]


def test_a_code_accepted_here_leads_to_the_existing_connection(admin_client, node, issuer):
    code = make_code(node)
    confirm(admin_client, code)
    connection = Connection.objects.get()
    for response in (review(admin_client, code), confirm(admin_client, code)):
        assert response.status_code == 302
        assert response["Location"] == f"/connections/{connection.id}/"
    assert Connection.objects.count() == 1
    assert len(issuer.accept_calls) == 1


def test_a_taken_connection_name_gets_a_suffix(admin_client, node, issuer, invite):
    invite(name="Support sync")
    confirm(admin_client, make_code(node), short_name="desk-b")
    mine = Connection.objects.get(role="destination")
    assert mine.name == "Support sync (desk-b)"


def test_the_destination_id_is_stable_per_code_and_node(node):
    code = invitation_code.decode(make_code(node))
    assert destination_connection_id(code) == destination_connection_id(code)
    other = invitation_code.decode(make_code(node, connection_id=str(uuid.uuid4())))
    assert destination_connection_id(code) != destination_connection_id(other)


def test_the_outbound_guard_refuses_a_private_issuer_address(admin_client, node, settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    code = make_code(node, source_url="http://127.0.0.1:9")
    page = confirm(admin_client, code)
    text = page.content.decode()
    assert "private or local network address" in text
    assert "Nothing was changed on this node" in text
    assert not Connection.objects.exists()


def test_a_short_name_with_markup_is_refused_kept_and_nothing_sent(admin_client, node, issuer):
    page = confirm(admin_client, make_code(node), short_name="<i>desk</i>")
    html = page.content.decode()
    assert "Use only letters, digits, spaces and the characters . - _" in html
    assert 'value="&lt;i&gt;desk&lt;/i&gt;"' in html
    assert issuer.calls == []
    assert not Connection.objects.exists()


def test_an_issuer_that_cannot_hear_the_confirmation_is_told_later(
    admin_client, node, issuer, monkeypatch
):
    """The acceptor's side is set up; the confirmation waits in the outbox until it lands."""
    reachable = {"now": False}

    def refuse_confirmation(method, base_url, path, **kwargs):
        if path.endswith("/status/") and not reachable["now"]:
            raise node_client.NodeError("unreachable", "Could not connect.")
        return issuer(method, base_url, path, **kwargs)

    monkeypatch.setattr(node_client, "request", refuse_confirmation)
    response = confirm(admin_client, make_code(node))
    connection = Connection.objects.get()
    assert connection.status == "active"
    assert outbox.deliver_pending_notifications().retrying == 1
    page = admin_client.get(response["Location"]).content.decode()
    assert "Peer not told yet" in page
    assert "Last error: Could not connect." in page
    [waiting] = connection.notifications.pending()
    assert waiting.status == "active"
    assert not issuer.confirmed
    reachable["now"] = True
    assert outbox.deliver_pending_notifications(ignore_backoff=True).delivered == 1
    assert issuer.confirmed


def test_the_accept_page_answers_at_once_when_the_issuer_hangs_after_pairing(
    admin_client, node, issuer, monkeypatch
):
    def hang_on_confirmation(method, base_url, path, **kwargs):
        if path.endswith("/status/"):
            time.sleep(5)  # as a hung issuer would hold the call until the client gives up
            raise node_client.NodeError("timeout", "Remote node timed out.")
        return issuer(method, base_url, path, **kwargs)

    monkeypatch.setattr(node_client, "request", hang_on_confirmation)
    started = time.monotonic()
    response = confirm(admin_client, make_code(node))
    assert time.monotonic() - started < 2
    assert response.status_code == 302
    [queued] = Connection.objects.get().notifications.all()
    assert (queued.state, queued.attempts) == ("pending", 0)


def test_the_accept_command_confirms_to_the_issuer_before_it_ends(node, issuer):
    """No web request waits there: the command tells the issuer itself, and says so."""
    out = StringIO()
    call_command("accept_invitation", make_code(node), stdout=out)
    assert issuer.confirmed
    assert Connection.objects.get().notifications.get().state == "delivered"
    assert "has not heard it yet" not in out.getvalue()


def test_the_accept_command_leaves_an_unheard_confirmation_to_the_worker(node, issuer, monkeypatch):
    def refuse_confirmation(method, base_url, path, **kwargs):
        if path.endswith("/status/"):
            raise node_client.NodeError("unreachable", "Could not connect.")
        return issuer(method, base_url, path, **kwargs)

    monkeypatch.setattr(node_client, "request", refuse_confirmation)
    out = StringIO()
    call_command("accept_invitation", make_code(node), stdout=out)
    assert (
        "The other side has not heard it yet. The remote side could not be told yet. "
        "Could not connect. This node keeps trying."
    ) in out.getvalue()
    assert out.getvalue().strip().endswith(" active")
    assert Connection.objects.get().notifications.get().state == "pending"
