"""Redeeming an invitation code (source side): another node accepts a code issued here."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from django.db import transaction

from connections.models import Connection, EventKind, RemoteStatus, Status
from invitations import code as invitation_code
from invitations.models import Invitation, hash_token
from nodes.models import GeneralSettings

ACCEPT_PATH = "/api/v1/invitations/accept/"
SECRET_BYTES = 32


class RedeemError(Exception):
    """The issuer refuses a redemption: an HTTP status, a contract code and a sentence."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Acceptor:
    """The node that accepts an invitation, as it describes itself."""

    uid: str
    url: str | None
    short_name: str
    platform: str
    version: str
    connection_id: str


@dataclass(frozen=True, repr=False)
class Redemption:
    connection: Connection
    invitation: Invitation
    secret: str

    def __repr__(self) -> str:
        return f"<Redemption of {self.connection.id}>"

    def answer(self) -> dict:
        """The issuer's 200 body (DESIGN.md §5): both sides of the connection and the secret."""
        node = GeneralSettings.load()
        connection, invitation = self.connection, self.invitation
        return {
            "connection": {
                "id": str(connection.id),
                "name": connection.name,
                "description": connection.description,
                "mode": connection.mode,
                "status": connection.status,
                "source": {
                    "uid": str(node.uid),
                    "url": node.base_url,
                    "short_name": connection.local_short_name,
                    "platform": node.platform,
                },
                "destination": {
                    "uid": str(invitation.acceptor_uid),
                    "url": invitation.acceptor_url or None,
                    "short_name": invitation.acceptor_short_name,
                    "platform": invitation.acceptor_platform,
                },
            },
            "secret": self.secret,
        }


def redeem_invitation(code_text: str, acceptor: Acceptor) -> Redemption:
    """Accept an invitation this node issued, on behalf of `acceptor`, and activate it.

    One transaction with the invitation row locked, so of many concurrent acceptors
    exactly one wins. The same acceptor asking again (a lost answer) gets the same result.
    """
    try:
        decoded = invitation_code.decode(code_text)
    except invitation_code.InvalidCode as error:
        raise RedeemError(400, "invalid_code", error.message) from None
    node = GeneralSettings.load()
    with transaction.atomic():
        # select_related: on PostgreSQL FOR UPDATE then locks the connection row as well.
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("connection")
            .filter(token_hash=hash_token(decoded.token))
            .first()
        )
        if invitation is None or str(invitation.connection_id) != decoded.connection_id:
            raise RedeemError(
                404,
                "invitation_not_found",
                "This node has no invitation matching this code. The connection may have "
                "been deleted; ask its admin for a new invitation.",
            )
        connection = invitation.connection
        replay = invitation.is_redeemed_by(acceptor.uid, acceptor.connection_id)
        if invitation.revoked_at is not None:
            raise RedeemError(
                410,
                "invitation_revoked",
                "This invitation code was revoked or replaced by a newer one.",
            )
        if invitation.is_expired and not replay:
            raise RedeemError(410, "invitation_expired", "This invitation code has expired.")
        if invitation.destination_uid is not None and str(invitation.destination_uid) != str(
            acceptor.uid
        ):
            raise RedeemError(
                403,
                "wrong_destination",
                "This invitation code was made for another destination node.",
            )
        if invitation.accepted_at is not None and not replay:
            raise RedeemError(
                409, "invitation_used", "This invitation code was already accepted by another node."
            )
        if replay and connection.remote_status == RemoteStatus.DELETED:
            # The acceptor deleted the side it made from this code and told us so: handing
            # the secret over again would make it a new "active" side facing one in error.
            raise RedeemError(
                409,
                "invitation_used",
                "This invitation code was already used for a connection that the accepting "
                "node has since deleted; a new connection needs a new invitation.",
            )
        if replay:
            return Redemption(connection, invitation, connection.shared_secret)
        if connection.status != Status.PENDING:
            # Deactivated or failed before anyone accepted: it no longer waits for a peer.
            raise RedeemError(
                410,
                "invitation_revoked",
                "The connection this code belongs to no longer waits to be accepted.",
            )
        if connection.mode not in node.available_modes():
            raise RedeemError(
                409,
                "mode_unavailable",
                f"This node's licence no longer allows {connection.get_mode_display()} mode.",
            )

        invitation.redeem(
            uid=str(acceptor.uid),
            url=acceptor.url or "",
            short_name=acceptor.short_name,
            platform=acceptor.platform,
            connection_id=acceptor.connection_id,
        )
        secret = secrets.token_urlsafe(SECRET_BYTES)
        connection.shared_secret = secret
        connection.remote_uid = uuid.UUID(str(acceptor.uid))
        connection.remote_connection_id = acceptor.connection_id
        connection.remote_platform = acceptor.platform
        connection.remote_short_name = acceptor.short_name
        if acceptor.url:
            connection.remote_url = acceptor.url
        connection.save()
        where = acceptor.url or "a private network"
        connection.record(
            EventKind.ACCEPTED,
            f"Invitation accepted by {acceptor.short_name} ({where}).",
            by_remote=True,
        )
        connection.activate(by_remote=True, message="Activated: the destination accepted.")
    return Redemption(connection, invitation, secret)
