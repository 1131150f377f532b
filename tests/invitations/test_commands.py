from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from connections.models import Connection
from invitations.models import Invitation
from invitations.services.issuing import issue_invitation


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_accept_invitation_prints_the_connection_id_and_status(invite, node):
    _source, code = invite(remote_url=node.base_url, remote_uid=str(node.uid))
    output = run("accept_invitation", code, "--local-short-name", "cli-side")
    destination = Connection.objects.get(role="destination")
    assert output.splitlines()[-1] == f"{destination.id} active"
    assert destination.local_short_name == "cli-side"


def test_accept_invitation_refuses_a_short_name_with_markup_before_any_call(invite, node):
    _source, code = invite(remote_url=node.base_url, remote_uid=str(node.uid))
    with pytest.raises(CommandError, match="Use only letters, digits"):
        call_command("accept_invitation", code, "--local-short-name", "<b>x</b>")
    assert not Connection.objects.filter(role="destination").exists()
    assert Invitation.objects.get().accepted_at is None


def test_accept_invitation_explains_a_damaged_code(db, node):
    with pytest.raises(CommandError, match="Copy the code again in full"):
        call_command("accept_invitation", "abc.def")
    assert not Connection.objects.exists()


def test_accept_invitation_explains_an_expired_code(invite, node):
    _source, code = invite(remote_url=node.base_url, remote_uid=str(node.uid))
    with (
        time_machine.travel(timezone.now() + timedelta(hours=80)),
        pytest.raises(CommandError, match="expired"),
    ):
        call_command("accept_invitation", code)
    assert Connection.objects.count() == 1


def test_clear_expired_invitations_keeps_valid_and_accepted_ones(invite, acceptor, client):
    expired_connection, _ = invite(name="Old")
    valid_connection, _ = invite(name="Fresh")
    accepted_connection, accepted_code = invite(name="Done")
    response = client.post(
        "/api/v1/invitations/accept/",
        {"code": accepted_code, "acceptor": acceptor},
        content_type="application/json",
    )
    assert response.status_code == 200
    with time_machine.travel(timezone.now() + timedelta(hours=60)):
        issue_invitation(valid_connection)  # revokes Fresh's first code, makes a new one
    with time_machine.travel(timezone.now() + timedelta(hours=100)):
        assert "2 expired" in run("clear_expired_invitations", "--dry-run")
        assert Invitation.objects.count() == 4
        assert "Deleted 2" in run("clear_expired_invitations")
    left = {(i.connection.name, i.state) for i in Invitation.objects.all()}
    assert left == {("Done", "accepted"), ("Fresh", "valid")}
    assert Connection.objects.count() == 3
