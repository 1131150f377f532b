"""A local connection: the code's issuer is this node, redeemed in-process."""

import pytest

from connections.models import Connection
from invitations.services.accepting import AcceptError, accept_invitation
from nodes import client as node_client


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a local connection must not call over HTTP")

    monkeypatch.setattr(node_client, "request", refuse)


@pytest.fixture
def local_code(invite, node):
    return invite(remote_url=node.base_url, remote_uid=str(node.uid))


def test_a_local_connection_is_accepted_in_process_with_both_rows(
    admin_client, local_code, no_network, node
):
    source, code = local_code
    response = admin_client.post(
        "/connections/accept/", {"code": code, "local_short_name": "desk-a2", "confirm": "1"}
    )
    destination = Connection.objects.get(role="destination")
    assert response["Location"] == f"/connections/{destination.id}/"
    source.refresh_from_db()
    assert source.status == destination.status == "active"
    assert source.shared_secret == destination.shared_secret != ""
    assert source.remote_connection_id == str(destination.id)
    assert destination.remote_connection_id == str(source.id)
    assert source.remote_uid == destination.remote_uid == node.uid
    assert source.is_local and destination.is_local
    assert source.remote_short_name == "desk-a2"
    assert destination.remote_short_name == "desk-a"
    # Two rows of one connection on one node: their names must still differ.
    assert destination.name == "Support sync (desk-a2)"
    listing = admin_client.get("/connections/").content.decode()
    assert listing.count('data-status="active"') == 2


def test_a_failed_local_accept_leaves_both_sides_untouched(local_code, no_network, node):
    source, code = local_code
    node.license = "free"
    node.save()
    with pytest.raises(AcceptError) as failure:
        accept_invitation(code)
    assert failure.value.code == "mode_not_allowed_here"
    source.refresh_from_db()
    assert source.status == "pending"
    assert Connection.objects.count() == 1


def test_a_local_code_accepted_twice_gives_the_same_connection(local_code, no_network):
    _source, code = local_code
    first = accept_invitation(code)
    second = accept_invitation(code)
    assert first.created and not second.created
    assert first.connection.pk == second.connection.pk
    assert Connection.objects.count() == 2


def test_a_code_pasted_again_after_its_connection_was_deleted_here_makes_nothing(
    local_code, no_network
):
    from connections.services.actions import delete_connection

    source, code = local_code
    delete_connection(accept_invitation(code).connection)
    source.refresh_from_db()
    assert source.status == "error"
    with pytest.raises(AcceptError) as failure:
        accept_invitation(code)
    assert failure.value.code == "invitation_used"
    assert "or by this one for a connection since deleted here" in failure.value.message
    assert list(Connection.objects.values_list("status", flat=True)) == ["error"]
