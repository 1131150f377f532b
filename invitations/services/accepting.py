"""Accepting an invitation code (destination side): the node where the admin pastes it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from connections.models import Connection, Peer, Role, real_user
from connections.services import actions
from connections.services.actions import PeerNotice
from invitations import code as invitation_code
from invitations import keys
from invitations.models import hash_token
from invitations.serializers import (
    AcceptAnswer,
    Acceptor,
    AcceptRequestSerializer,
    AcceptResponseSerializer,
)
from invitations.services.messages import failure_message
from invitations.services.redeeming import ACCEPT_PATH, RedeemError, redeem_invitation
from nodes import client
from nodes.models import GeneralSettings, License
from nodes.validators import SHORT_NAME_MAX_LENGTH, validate_short_name


class AcceptError(Exception):
    """Accepting failed and nothing was created; `message` tells the admin what to do."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Acceptance:
    connection: Connection
    created: bool
    # This side's confirmation to the issuer: queued for the worker (or, for a local
    # connection, applied to the issuer's side at once).
    issuer_told: PeerNotice = PeerNotice(True, "")


def read_invitation_code(text: str) -> invitation_code.InvitationCode:
    """Read a pasted code locally: damage is caught here, before any network call."""
    try:
        return invitation_code.decode(text)
    except invitation_code.InvalidCode as error:
        raise AcceptError("invalid_code", error.message) from None


def destination_connection_id(code: invitation_code.InvitationCode) -> uuid.UUID:
    """This node's id for the connection a code offers.

    Derived from the code rather than random: a retry after a lost answer sends the same
    id, so the issuer sees the same acceptor (idempotency), and the primary key makes a
    second row for one code impossible.
    """
    node = GeneralSettings.load()
    return uuid.uuid5(node.uid, f"{code.source_uid}/{code.connection_id}")


def find_accepted_connection(code: invitation_code.InvitationCode) -> Connection | None:
    """The connection this node already made from this code, if any."""
    return Connection.objects.filter(
        Q(pk=destination_connection_id(code))
        | Q(
            role=Role.DESTINATION,
            remote_uid=code.source_uid,
            remote_connection_id=code.connection_id,
        )
    ).first()


def accept_invitation(
    code_text: str, *, local_short_name: str | None = None, user=None
) -> Acceptance:
    """Accept an invitation code on this node: the issuer pairs its side, we store ours and
    queue our confirmation; once the worker delivers it (moments later) both are active.

    Raises AcceptError (nothing created) with a message for the admin. A code already
    accepted here returns the existing connection with `created=False`.
    """
    code = read_invitation_code(code_text)
    node = GeneralSettings.load()
    existing = find_accepted_connection(code)
    if existing is not None:
        return Acceptance(existing, created=False)
    short_name = code.destination_short_name if local_short_name is None else local_short_name
    acceptor = _acceptor(code, node, short_name.strip())
    compact = "".join(code_text.split())
    if code.source_uid == str(node.uid):
        # A local connection: redeem in-process. Calling ourselves over HTTP would
        # deadlock a single-worker server. Both rows are made in one transaction.
        with transaction.atomic():
            try:
                answer = redeem_invitation(compact, acceptor, node).answer(node)
            except RedeemError as error:
                raise AcceptError(error.code, failure_message(error.code, code)) from None
            return _store_destination(code, answer, acceptor, user=user)
    answer = _call_issuer(code, compact, acceptor)
    return _store_destination(code, answer, acceptor, user=user)


def _acceptor(code: invitation_code.InvitationCode, node: GeneralSettings, short_name: str):
    """How this node introduces itself to the issuer; AcceptError when it cannot accept."""
    if not 0 < len(short_name) <= SHORT_NAME_MAX_LENGTH:
        raise AcceptError(
            "invalid_short_name", "Enter this instance's short name (at most 40 characters)."
        )
    try:
        validate_short_name(short_name)
    except ValidationError as error:
        raise AcceptError("invalid_short_name", error.messages[0]) from None
    if code.mode not in node.available_modes():
        raise AcceptError(
            "mode_not_allowed_here",
            f"This invitation is for {code.mode.capitalize()} mode, which this node's "
            f"{License(node.effective_license).label} licence does not allow. Change the "
            "licence in General Settings (Evaluation or Paid allow Script mode), or ask the "
            "other admin to initiate a Basic connection.",
        )
    if code.destination_uid is not None and code.destination_uid != str(node.uid):
        raise AcceptError("wrong_destination", failure_message("wrong_destination", code))
    return Acceptor(
        uid=str(node.uid),
        # A private instance cannot be called back, so it gives no URL (as "I don't have a URL").
        url=node.base_url if node.public else "",
        short_name=short_name,
        platform=node.platform,
        version=settings.EXALATE_VERSION,
        connection_id=str(destination_connection_id(code)),
        public_key=keys.public_key_text(_acceptor_key(code)),
    )


def _acceptor_key(code: invitation_code.InvitationCode):
    return keys.acceptor_private_key(hash_token(code.token), code.connection_id)


def _call_issuer(
    code: invitation_code.InvitationCode, compact: str, acceptor: Acceptor
) -> AcceptAnswer:
    body = AcceptRequestSerializer({"code": compact, "acceptor": acceptor}).data
    try:
        status, answer = client.request("POST", code.source_url, ACCEPT_PATH, json_body=body)
    except client.NodeError as error:
        raise AcceptError(error.kind, failure_message(error.kind, code, error.message)) from None
    if status != 200:
        remote_code = answer.get("code") if isinstance(answer.get("code"), str) else "refused"
        detail = answer.get("detail") if isinstance(answer.get("detail"), str) else ""
        raise AcceptError(remote_code, failure_message(remote_code, code, detail))
    parsed = AcceptResponseSerializer(data=answer)
    if not parsed.is_valid():
        raise AcceptError("bad_answer", failure_message("bad_answer", code))
    remote = parsed.validated_data.connection
    if (remote.id, remote.mode, remote.source.uid) != (
        code.connection_id,
        code.mode,
        code.source_uid,
    ):
        raise AcceptError("bad_answer", failure_message("bad_answer", code))
    return parsed.validated_data


def _store_destination(
    code: invitation_code.InvitationCode, answer: AcceptAnswer, acceptor: Acceptor, *, user=None
) -> Acceptance:
    """Create this side of an accepted connection, paired with the issuer's side, and queue
    the confirmation that it exists (the issuer's side waits for that to go active)."""
    remote, pk = answer.connection, uuid.UUID(acceptor.connection_id)
    try:
        secret = keys.derive_secret(
            _acceptor_key(code),
            answer.public_key,
            token_hash=hash_token(code.token),
            source_connection_id=code.connection_id,
            destination_connection_id=acceptor.connection_id,
        )
    except keys.InvalidPublicKey:
        raise AcceptError("bad_answer", failure_message("bad_answer", code)) from None
    issuer = Peer(
        uid=remote.source.uid,
        connection_id=remote.id,
        short_name=remote.source.short_name,
        platform=remote.source.platform,
        url=remote.source.url or code.source_url,
    )
    try:
        with transaction.atomic():
            existing = Connection.objects.select_for_update().filter(pk=pk).first()
            if existing is not None:
                return Acceptance(existing, created=False)
            connection = Connection(
                id=pk,
                name=_free_connection_name(remote.name, acceptor.short_name),
                description=remote.description,
                mode=remote.mode,
                role=Role.DESTINATION,
                local_short_name=acceptor.short_name,
                created_by=real_user(user),
            )
            connection.pair(
                issuer,
                secret,
                confirmed=True,
                user=user,
                message=f"Accepted the invitation from {issuer.short_name} ({issuer.url}).",
            )
            # Queued with this side, never sent from here: the worker tells the issuer
            # moments later, so the admin's page does not wait on the issuer a second time.
            issuer_told = actions.confirm_to_peer(connection)
    except IntegrityError:
        # Two submissions of one code raced; the other one made the row.
        existing = Connection.objects.filter(pk=pk).first()
        if existing is None:
            raise
        return Acceptance(existing, created=False)
    return Acceptance(connection, created=True, issuer_told=issuer_told)


def _free_connection_name(name: str, short_name: str) -> str:
    """Connection names are unique on a node; a local connection's two sides share one."""
    candidates = [name, f"{name} ({short_name})"]
    candidates += [f"{name} ({short_name} {n})" for n in range(2, 50)]
    for candidate in candidates:
        candidate = candidate[:100]
        if not Connection.objects.with_name(candidate).exists():
            return candidate
    return f"{name[:90]} {uuid.uuid4().hex[:8]}"
