"""Redeeming an invitation code (source side): another node accepts a code issued here."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from connections.models import Connection, RemoteStatus, Status
from invitations import code as invitation_code
from invitations import keys
from invitations.models import Invitation, hash_token
from invitations.serializers import AcceptAnswer, AcceptedConnection, Acceptor, Party
from nodes.models import GeneralSettings

ACCEPT_PATH = "/api/v1/invitations/accept/"


class RedeemError(Exception):
    """The issuer refuses a redemption: an HTTP status, a contract code and a sentence."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Redemption:
    connection: Connection
    invitation: Invitation

    def answer(self, node: GeneralSettings) -> AcceptAnswer:
        """The issuer's 200 answer (DESIGN.md §5): both sides of the connection and this
        side's public key; nothing secret, so a repeat of the call gives nothing away."""
        connection, invitation = self.connection, self.invitation
        return AcceptAnswer(
            connection=AcceptedConnection(
                id=str(connection.id),
                name=connection.name,
                description=connection.description,
                mode=connection.mode,
                status=connection.status,
                source=Party(
                    str(node.uid), node.base_url, connection.local_short_name, node.platform
                ),
                destination=Party(
                    str(invitation.acceptor_uid),
                    invitation.acceptor_url,
                    invitation.acceptor_short_name,
                    invitation.acceptor_platform,
                ),
            ),
            public_key=invitation.issuer_public_key,
        )


def redeem_invitation(code_text: str, acceptor: Acceptor, node: GeneralSettings) -> Redemption:
    """Accept an invitation this node issued, on behalf of `acceptor`.

    One transaction with the invitation row locked, so of many concurrent acceptors
    exactly one wins. This side is paired with the key agreed from the two public keys
    and stays pending until the acceptor confirms it stored its side. The same acceptor
    asking again before the code expires (its answer was lost) gets the same answer.
    """
    try:
        decoded = invitation_code.decode(code_text)
    except invitation_code.InvalidCode as error:
        raise RedeemError(400, "invalid_code", error.message) from None
    with transaction.atomic():
        invitation = _locked_invitation(decoded)
        if invitation.is_redeemed_by(acceptor, acceptor.public_key):
            return _replay(invitation)
        _check_redeemable(invitation, acceptor, node)
        _pair_issuer_side(invitation, acceptor)
    return Redemption(invitation.connection, invitation)


def _pair_issuer_side(invitation: Invitation, acceptor: Acceptor) -> None:
    """Agree on the secret with the acceptor's public key; the private key lives only here."""
    private = keys.new_private_key()
    try:
        secret = keys.derive_secret(
            private,
            acceptor.public_key,
            token_hash=invitation.token_hash,
            source_connection_id=str(invitation.connection_id),
            destination_connection_id=acceptor.connection_id,
        )
    except keys.InvalidPublicKey:
        raise RedeemError(
            400, "invalid_request", "The acceptor's public key cannot be used."
        ) from None
    invitation.redeem(
        acceptor,
        acceptor_public_key=acceptor.public_key,
        issuer_public_key=keys.public_key_text(private),
    )
    where = acceptor.url or "a private network"
    invitation.connection.pair(
        acceptor,
        secret,
        confirmed=False,
        by_remote=True,
        message=f"Invitation accepted by {acceptor.short_name} ({where}); waiting for it "
        "to confirm that it stored its side.",
    )


def _locked_invitation(decoded: invitation_code.InvitationCode) -> Invitation:
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
    return invitation


def _replay(invitation: Invitation) -> Redemption:
    """The acceptor that redeemed the code asks again: its answer was lost on the way."""
    connection = invitation.connection
    if invitation.revoked_at is not None:
        raise _revoked()
    if invitation.is_expired:
        # A lost answer is recovered while the code is valid; after that, nothing at all.
        raise RedeemError(410, "invitation_expired", "This invitation code has expired.")
    if connection.remote_status == RemoteStatus.DELETED:
        # The acceptor deleted the side it made from this code and told us so: a new
        # "active" side facing one in error must not come of it.
        raise RedeemError(
            409,
            "invitation_used",
            "This invitation code was already used for a connection that the accepting "
            "node has since deleted; a new connection needs a new invitation.",
        )
    return Redemption(connection, invitation)


def _check_redeemable(invitation: Invitation, acceptor: Acceptor, node: GeneralSettings) -> None:
    """Refuse a first redemption that the code or the connection no longer allows."""
    connection = invitation.connection
    if invitation.revoked_at is not None:
        raise _revoked()
    if invitation.is_expired:
        raise RedeemError(410, "invitation_expired", "This invitation code has expired.")
    expected = invitation.destination_uid
    if expected is not None and str(expected) != str(acceptor.uid):
        raise RedeemError(
            403, "wrong_destination", "This invitation code was made for another destination node."
        )
    if invitation.accepted_at is not None:
        raise RedeemError(
            409, "invitation_used", "This invitation code was already accepted by another node."
        )
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


def _revoked() -> RedeemError:
    return RedeemError(
        410, "invitation_revoked", "This invitation code was revoked or replaced by a newer one."
    )
