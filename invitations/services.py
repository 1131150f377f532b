"""Issuing invitations (source side). Redeeming lives here too once accepted codes exist."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connections.models import Connection, EventKind, GeneralSettings
from invitations import code as invitation_code
from invitations.models import Invitation, hash_token


def issue_invitation(
    connection: Connection, *, user=None, destination_uid: str | None = None
) -> tuple[Invitation, str]:
    """Make a new invitation for a pending connection, revoking any earlier one.

    Returns the invitation and its code; the code exists only in this return value.
    """
    node = GeneralSettings.load()
    token = invitation_code.new_token()
    expires_at = timezone.now() + timedelta(hours=settings.EXALATE_INVITATION_TTL_HOURS)
    with transaction.atomic():
        revoked = 0
        for old in connection.invitations.valid().select_for_update():
            old.revoke()
            revoked += 1
        if destination_uid is None:
            previous = connection.invitations.order_by("-created_at").first()
            destination_uid = previous and previous.destination_uid
        invitation = Invitation.objects.create(
            connection=connection,
            token_hash=hash_token(token),
            destination_uid=destination_uid,
            created_by=user if user is not None and user.is_authenticated else None,
            expires_at=expires_at,
        )
        if revoked:
            connection.record(
                EventKind.INVITATION_REVOKED, "The earlier invitation code was revoked.", user=user
            )
        connection.record(
            EventKind.INVITATION_ISSUED,
            f"Invitation issued, valid until {expires_at:%Y-%m-%d %H:%M} UTC.",
            user=user,
        )
    text = invitation_code.encode(
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
            destination_uid=str(destination_uid) if destination_uid else None,
            expires_at=expires_at,
            token=token,
        )
    )
    return invitation, text
