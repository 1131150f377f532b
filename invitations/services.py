"""Issuing invitations (source side). Redeeming lives here too once accepted codes exist."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from connections import client
from connections.models import (
    Connection,
    EventKind,
    GeneralSettings,
    License,
    RemoteStatus,
    Role,
    Status,
)
from connections.validators import SHORT_NAME_MAX_LENGTH, validate_short_name
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


# --- Redeeming (source side: the node that issued the code) ----------------------------

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


# --- Accepting (destination side: the node where the admin pastes the code) -------------


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
    """Accept an invitation code on this node: the issuer activates its side, we store ours.

    Raises AcceptError (nothing created) with a message for the admin. A code already
    accepted here returns the existing connection with `created=False`.
    """
    code = read_invitation_code(code_text)
    node = GeneralSettings.load()
    existing = find_accepted_connection(code)
    if existing is not None:
        return Acceptance(existing, created=False)

    short_name = code.destination_short_name if local_short_name is None else local_short_name
    short_name = short_name.strip()
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

    acceptor = Acceptor(
        uid=str(node.uid),
        # A private instance cannot be called back, so it gives no URL (as "I don't have a URL").
        url=node.base_url if node.public else None,
        short_name=short_name,
        platform=node.platform,
        version=settings.EXALATE_VERSION,
        connection_id=str(destination_connection_id(code)),
    )
    compact = "".join(code_text.split())
    if code.source_uid == str(node.uid):
        # A local connection: redeem in-process. Calling ourselves over HTTP would
        # deadlock a single-worker server. Both rows are made in one transaction.
        with transaction.atomic():
            try:
                answer = redeem_invitation(compact, acceptor).answer()
            except RedeemError as error:
                raise AcceptError(error.code, failure_message(error.code, code)) from None
            return _store_destination(code, answer, acceptor, user=user)
    answer = _call_issuer(code, compact, acceptor)
    return _store_destination(code, answer, acceptor, user=user)


def _call_issuer(code: invitation_code.InvitationCode, compact: str, acceptor: Acceptor) -> dict:
    from invitations.serializers import AcceptResponseSerializer

    body = {
        "code": compact,
        "acceptor": {
            "uid": acceptor.uid,
            "url": acceptor.url,
            "short_name": acceptor.short_name,
            "platform": acceptor.platform,
            "version": acceptor.version,
            "connection_id": acceptor.connection_id,
        },
    }
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
    data = parsed.validated_data
    remote = data["connection"]
    if (
        remote["id"] != code.connection_id
        or remote["mode"] != code.mode
        or str(remote["source"]["uid"]) != code.source_uid
    ):
        raise AcceptError("bad_answer", failure_message("bad_answer", code))
    return data


def _store_destination(
    code: invitation_code.InvitationCode, answer: dict, acceptor: Acceptor, *, user=None
) -> Acceptance:
    """Create this side of an accepted connection, active, with its events."""
    remote = answer["connection"]
    source = remote["source"]
    pk = uuid.UUID(acceptor.connection_id)
    try:
        with transaction.atomic():
            existing = Connection.objects.select_for_update().filter(pk=pk).first()
            if existing is not None:
                return Acceptance(existing, created=False)
            connection = Connection(
                id=pk,
                name=_free_connection_name(remote["name"], acceptor.short_name),
                description=remote["description"],
                mode=remote["mode"],
                role=Role.DESTINATION,
                local_short_name=acceptor.short_name,
                remote_short_name=source["short_name"],
                remote_url=source["url"] or code.source_url,
                remote_uid=uuid.UUID(str(source["uid"])),
                remote_connection_id=str(remote["id"]),
                remote_platform=source["platform"],
                status=Status.PENDING,
                created_by=user if user is not None and user.is_authenticated else None,
            )
            connection.shared_secret = answer["secret"]
            connection.save(force_insert=True)
            connection.record(
                EventKind.ACCEPTED,
                f"Accepted the invitation from {source['short_name']} ({connection.remote_url}).",
                user=user,
            )
            connection.activate(
                user=user, message="Activated: the source confirmed the invitation."
            )
    except IntegrityError:
        # Two submissions of one code raced; the other one made the row.
        existing = Connection.objects.filter(pk=pk).first()
        if existing is None:
            raise
        return Acceptance(existing, created=False)
    return Acceptance(connection, created=True)


def _free_connection_name(name: str, short_name: str) -> str:
    """Connection names are unique on a node; a local connection's two sides share one."""
    candidates = [name, f"{name} ({short_name})"]
    candidates += [f"{name} ({short_name} {n})" for n in range(2, 50)]
    for candidate in candidates:
        candidate = candidate[:100]
        if not Connection.objects.with_name(candidate).exists():
            return candidate
    return f"{name[:90]} {uuid.uuid4().hex[:8]}"


def failure_message(code: str, invitation: invitation_code.InvitationCode, detail: str = "") -> str:
    """What an admin on the accepting side should do after a failure with this code."""
    other = f"the admin of {invitation.source_short_name} ({invitation.source_url})"
    unchanged = "Nothing was changed on this node"
    messages = {
        "invalid_code": invitation_code.DAMAGED,
        "invitation_expired": (
            f"This invitation code has expired. Ask {other} to regenerate the invitation "
            "and send you the new code."
        ),
        "invitation_revoked": (
            f"This invitation code was revoked or replaced by a newer one. Ask {other} to "
            "regenerate the invitation and send you the new code."
        ),
        "invitation_used": (
            "This invitation code has already been accepted by another node, or by this one "
            "for a connection since deleted here. If you need this connection, ask "
            f"{other} to initiate a new one for this instance."
        ),
        "wrong_destination": (
            "This invitation code was made for another instance, not this one. Ask "
            f"{other} to initiate the connection with this node's Exalate URL "
            f"({GeneralSettings.load().base_url})."
        ),
        "invitation_not_found": (
            f"{invitation.source_short_name} does not know this invitation code: the "
            f"connection may have been deleted there. Ask {other} for a new invitation."
        ),
        "mode_unavailable": (
            f"The licence of {invitation.source_short_name} no longer allows "
            f"{invitation.mode.capitalize()} mode. Ask {other} to change their licence or to "
            "initiate a Basic connection."
        ),
        "throttled": (
            f"{invitation.source_short_name} received too many attempts in a short time. "
            f"{unchanged}: wait a minute, then try again."
        ),
        "unreachable": (
            f"Could not reach {invitation.source_url}. {unchanged}: check that the node is "
            "running and reachable from here, then try again."
        ),
        "timeout": (
            f"{invitation.source_url} did not answer in time. {unchanged}: try again; "
            "if the other side was already set up, trying again finishes it safely."
        ),
        "blocked": f"{detail} {unchanged}.",
        "server_error": (
            f"{invitation.source_url} had an internal error. {unchanged}: try again later, "
            f"or tell {other}."
        ),
        "not_exalate": f"{detail} {unchanged}: check the code's source and try again.",
        "bad_answer": (
            f"{invitation.source_url} answered in a way this node does not understand. "
            f"{unchanged}: tell {other} and check that both nodes run a current version."
        ),
    }
    if code in messages:
        return messages[code]
    reason = f" ({detail})" if detail else ""
    return (
        f"{invitation.source_short_name} refused the invitation{reason}. {unchanged}: "
        f"contact {other}."
    )
