"""Initiating a connection and its invitation codes (source side): issue, regenerate, revoke."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connections.models import Connection, EventKind, Role, Status, real_user
from connections.services.actions import ConnectionActionError, lock_connection
from invitations import code as invitation_code
from invitations.models import Invitation, hash_token
from nodes.models import GeneralSettings


def initiate_connection(
    *,
    name: str,
    mode: str,
    local_short_name: str,
    remote_short_name: str,
    description: str = "",
    remote_url: str = "",
    remote_uid: str | None = None,
    remote_platform: str = "",
    user=None,
):
    """Create the pending source side of a connection and its first invitation.

    Returns `(connection, invitation, code)`; the code is shown once and never stored.
    """
    with transaction.atomic():
        connection = Connection.objects.create(
            name=name.strip(),
            description=description.strip(),
            mode=mode,
            role=Role.SOURCE,
            local_short_name=local_short_name.strip(),
            remote_short_name=remote_short_name.strip(),
            remote_url=remote_url,
            remote_platform=remote_platform,
            status=Status.PENDING,
            created_by=real_user(user),
        )
        where = remote_url or "a destination without a URL"
        connection.record(
            EventKind.CREATED, f"Connection initiated in {mode} mode towards {where}.", user=user
        )
        invitation, code = issue_invitation(connection, user=user, destination_uid=remote_uid)
    return connection, invitation, code


def issue_invitation(
    connection: Connection, *, user=None, destination_uid: str | None = None
) -> tuple[Invitation, str]:
    """Make a new invitation for a pending connection, revoking any earlier one.

    Returns the invitation and its code; the code exists only in this return value.
    """
    token = invitation_code.new_token()
    expires_at = timezone.now() + timedelta(hours=settings.EXALATE_INVITATION_TTL_HOURS)
    with transaction.atomic():
        revoke_pending_invitations(connection, user)
        if destination_uid is None:
            previous = connection.invitations.order_by("-created_at").first()
            destination_uid = previous and previous.destination_uid
        invitation = Invitation.issue(
            connection,
            hash_token(token),
            destination_uid=destination_uid,
            expires_at=expires_at,
            user=user,
        )
    return invitation, _code_text(invitation, token)


def _code_text(invitation: Invitation, token: str) -> str:
    node, connection = GeneralSettings.load(), invitation.connection
    return invitation_code.encode(
        invitation_code.InvitationCode(
            source_uid=str(node.uid),
            source_url=node.base_url,
            source_short_name=connection.local_short_name,
            source_platform=node.platform,
            source_version=settings.EXALATE_VERSION,
            connection_id=str(connection.id),
            name=connection.name,
            description=connection.description,
            mode=connection.mode,
            destination_short_name=connection.remote_short_name,
            destination_uid=str(invitation.destination_uid) if invitation.destination_uid else None,
            expires_at=invitation.expires_at,
            token=token,
        )
    )


def regenerate_invitation(connection: Connection, user=None):
    """A new code for a connection waiting to be accepted; the old code stops working.

    Returns `(invitation, code)`. The row is locked, so an acceptance arriving now cannot
    slip between the check and the new code.
    """
    with transaction.atomic():
        _lock_awaiting_acceptance(connection, "no new code was made")
        return issue_invitation(connection, user=user)


def revoke_invitation(connection: Connection, user=None) -> int:
    """Revoke the code of a connection waiting to be accepted (page action); the count."""
    with transaction.atomic():
        _lock_awaiting_acceptance(connection, "nothing was revoked")
        return revoke_pending_invitations(connection, user)


def revoke_pending_invitations(connection: Connection, user=None) -> int:
    """Revoke the invitation codes of this connection that could still be accepted."""
    with transaction.atomic():
        pending = connection.invitations.valid().select_for_update()
        return sum(invitation.revoke(user=user) for invitation in pending)


def _lock_awaiting_acceptance(connection: Connection, consequence: str) -> None:
    lock_connection(connection)
    if not connection.awaits_acceptance:
        raise ConnectionActionError(
            "Only a pending connection that this node initiated has an invitation code; "
            f"this one is {connection.status_in_words}, so {consequence}."
        )
