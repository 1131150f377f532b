"""`initiating`: the one way to initiate, shared by the wizard and the command."""

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from connections.models import Connection
from invitations import code as invitation_code
from invitations.management.commands.initiate_connection import OPTION_NAMES
from invitations.services import initiating
from nodes.discovery import Destination
from tests.http_servers import answering, discovery_answer

WIZARD = "/connections/initiate/"
PREFIX = "initiate_connection_wizard"
GOOD = {
    "destination": {"no_url": "on"},
    "mode": {"mode": "basic"},
    "details": {"local_short_name": "acme", "remote_short_name": "far", "name": "N"},
}


@pytest.fixture
def private_allowed(settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True


def wizard_refusal(client, step: str, fields: dict) -> list[str]:
    """Walk the wizard well up to `step`, send `fields` there: the messages shown."""
    client.get(WIZARD)
    for name in ("destination", "mode", "details"):
        data = {f"{PREFIX}-current_step": name}
        sent = fields if name == step else GOOD[name]
        data.update({f"{name}-{key}": value for key, value in sent.items()})
        response = client.post(WIZARD, data)
        if name == step:
            break
    assert response.context["wizard"]["steps"].current == step
    return [message for errors in response.context["form"].errors.values() for message in errors]


def command_refusal(step: str, fields: dict) -> list[str]:
    """The command with the same input (good values for the other steps): its messages."""
    given = {
        key: value for name, sent in GOOD.items() if name != step for key, value in sent.items()
    }
    given.update(fields)
    args = []
    for key, value in given.items():
        args += [OPTION_NAMES[key]] if key == "no_url" else [OPTION_NAMES[key], value]
    with pytest.raises(CommandError) as error:
        call_command("initiate_connection", *args, stdout=io.StringIO())
    # Each line names the option it is about; the message after it is the wizard's.
    return [re.sub(r"^--[a-z-]+: ", "", line) for line in str(error.value).splitlines()]


@pytest.mark.parametrize(
    ("step", "fields"),
    [
        ("destination", {"destination_url": ""}),
        ("destination", {"destination_url": "https://x.example", "no_url": "on"}),
        ("destination", {"destination_url": "ftp://x.example"}),
        ("destination", {"destination_url": "https://u:pw@x.example"}),
        ("destination", {"destination_url": "http://10.0.0.8"}),  # the outbound guard
        (
            "details",
            {
                "local_short_name": "acme/eu",
                "remote_short_name": "",
                "name": "n" * 101,
                "description": "d" * 1001,
            },
        ),
        ("details", {"local_short_name": "a", "remote_short_name": "b", "name": "tab\there"}),
        ("details", {"local_short_name": "a", "remote_short_name": "b", "name": "TAKEN"}),
    ],
)
def test_the_wizard_and_the_command_refuse_the_same_input_with_the_same_words(
    admin_client, node, step, fields
):
    Connection.objects.create(
        name="Taken", mode="basic", role="source", local_short_name="a", remote_short_name="b"
    )
    shown = wizard_refusal(admin_client, step, fields)
    assert shown
    assert command_refusal(step, fields) == shown
    assert Connection.objects.count() == 1


@pytest.mark.parametrize(
    ("answer", "status"),
    [(b"down", 500), (discovery_answer(public=False), 200), (discovery_answer(modes=[]), 200)],
)
def test_both_refuse_a_destination_that_cannot_be_used_with_the_same_words(
    admin_client, node, private_allowed, answer, status
):
    content_type = "text/plain" if isinstance(answer, bytes) else "application/json"
    with answering(status, answer, content_type) as server:
        fields = {"destination_url": server.url}
        shown = wizard_refusal(admin_client, "destination", fields)
        assert command_refusal("destination", fields) == shown
    assert "I don't have a URL" in shown[0] or "no configuration mode in common" in shown[0]


def test_both_say_why_a_mode_is_not_offered_with_the_same_reasons(admin_client, node):
    node.license = "free"
    node.save()
    admin_client.get(WIZARD)
    admin_client.post(WIZARD, {f"{PREFIX}-current_step": "destination", "destination-no_url": "on"})
    response = admin_client.post(WIZARD, {f"{PREFIX}-current_step": "mode", "mode-mode": "script"})
    reasons = response.context["mode_notes"]
    assert reasons and all(reason in response.content.decode() for reason in reasons)
    with pytest.raises(CommandError) as error:
        call_command(
            "initiate_connection", "--no-url", "--mode", "script", "--remote-short-name", "b",
            "--name", "N",
        )  # fmt: skip
    assert str(error.value) == f"--mode: choose one of: basic. {' '.join(reasons)}"


# --- the service on its own ---------------------------------------------------------------


def test_initiate_does_it_all_in_one_call_and_asks_the_destination_once(node, private_allowed):
    node.short_name = "acme"
    node.save()
    with answering(200, discovery_answer(short_name="globex")) as server:
        connection, invitation, code = initiating.initiate(
            node, destination_url=server.url + "/", mode="script", name="One call"
        )
    assert server.requests == ["/api/v1/instance/"]
    assert (connection.local_short_name, connection.remote_short_name) == ("acme", "globex")
    assert connection.remote_url == server.url and connection.status == "pending"
    assert invitation_code.decode(code).connection_id == str(connection.id)
    assert invitation.connection == connection


@pytest.mark.parametrize(
    ("given", "step"),
    [
        ({"destination_url": "nope"}, "destination"),
        ({"no_url": True, "mode": "visual"}, "mode"),
        ({"no_url": True, "mode": "basic", "remote_short_name": "b"}, "details"),
    ],
)
def test_initiate_names_the_step_that_refuses(node, given, step):
    with pytest.raises(initiating.InitiateRefused) as refused:
        initiating.initiate(node, **given)
    assert refused.value.step == step
    assert refused.value.errors
    assert not Connection.objects.exists()


def test_a_node_that_is_not_public_is_refused_before_anything_else(node):
    node.public = False
    node.save()
    with pytest.raises(initiating.InitiateRefused) as refused:
        initiating.initiate(node, destination_url="http://10.0.0.8")
    assert refused.value.step == "node"
    assert "not public" in str(refused.value.errors)


def test_a_name_taken_between_the_check_and_the_insert_is_a_refusal_on_the_name(node):
    Connection.objects.create(
        name="RACED", mode="basic", role="source", local_short_name="a", remote_short_name="b"
    )
    details = {
        "name": "Raced",
        "local_short_name": "a",
        "remote_short_name": "b",
        "description": "",
    }
    with pytest.raises(initiating.InitiateRefused) as refused:
        initiating.create(Destination(), mode="basic", details=details)
    assert refused.value.step == "details"
    assert [e.message for e in refused.value.errors["name"]] == [initiating.NAME_TAKEN]
    assert Connection.objects.count() == 1
