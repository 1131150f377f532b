"""Workflows on connections that span several models."""

from __future__ import annotations

from django.db import transaction

from connections.models import Connection, EventKind, Role, Status


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
    from invitations.services import issue_invitation

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
            created_by=user if user is not None and user.is_authenticated else None,
        )
        where = remote_url or "a destination without a URL"
        connection.record(
            EventKind.CREATED, f"Connection initiated in {mode} mode towards {where}.", user=user
        )
        invitation, code = issue_invitation(connection, user=user, destination_uid=remote_uid)
    return connection, invitation, code
