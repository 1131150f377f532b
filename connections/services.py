"""Workflows on connections that span several models."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from connections import client
from connections.auth import sign_token, token_for
from connections.models import (
    Connection,
    EventKind,
    GeneralSettings,
    NotificationState,
    PeerNotification,
    RemoteStatus,
    Role,
    Status,
)

logger = logging.getLogger(__name__)


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


# --- operating a connection ------------------------------------------------------------


class ConnectionActionError(ValueError):
    """The action does not fit the connection's current state; the message says why."""


class ConnectionGone(ConnectionActionError):
    """The connection was deleted while the action waited (another tab, another admin)."""


@dataclass(frozen=True)
class PeerNotice:
    """What became of telling the peer about a change on this side."""

    told: bool
    message: str


def record_remote_status(
    connection: Connection, status: str, *, reason: str = "", changed_at=None
) -> bool:
    """The peer reported its side's status; False when the report was older than one we have."""
    applied = connection.apply_remote_status(status, reason, changed_at=changed_at)
    if not applied:
        logger.info("Ignored a stale status report for connection %s", connection.pk)
    return applied


def deactivate_connection(connection: Connection, user=None, *, reason: str = "") -> PeerNotice:
    """Stop the connection on this side at once, then tell the peer (now or later)."""
    with transaction.atomic():
        _lock(connection)
        if not connection.can_deactivate:
            raise ConnectionActionError(
                f"Only an active connection can be deactivated; this one is "
                f"{connection.status_in_words}."
            )
        connection.deactivate(user=user, reason=reason)
        notification = _queue_for_peer(connection, RemoteStatus.DEACTIVATED, reason)
    return _tell_now(notification)


def activate_connection(connection: Connection, user=None) -> PeerNotice:
    """Start a deactivated connection again on this side, then tell the peer."""
    with transaction.atomic():
        _lock(connection)
        if not connection.can_activate:
            raise ConnectionActionError(
                f"Only a deactivated connection can be activated; this one is "
                f"{connection.status_in_words}."
            )
        connection.activate(user=user)
        notification = _queue_for_peer(connection, RemoteStatus.ACTIVE)
    return _tell_now(notification)


def delete_connection(connection: Connection, user=None) -> PeerNotice:
    """Delete this side; its events stay (for staff) and the peer is told.

    The outbox row carries its own copy of what it needs to sign and send, since the
    connection row is gone by the time a retry runs.
    """
    with transaction.atomic():
        _lock(connection)
        connection.record(
            EventKind.DELETED,
            f"Connection deleted (it was {connection.get_status_display().lower()}).",
            user=user,
            from_status=connection.status,
        )
        queued = _queue_for_peer(connection, RemoteStatus.DELETED)
        connection.delete()
    return _tell_now(queued)


def regenerate_invitation(connection: Connection, user=None):
    """A new code for a connection waiting to be accepted; the old code stops working.

    Returns `(invitation, code)`. The row is locked, so an acceptance arriving now cannot
    slip between the check and the new code.
    """
    from invitations.services import issue_invitation

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
    from invitations.models import Invitation

    with transaction.atomic():
        pending = list(Invitation.objects.valid().filter(connection=connection).select_for_update())
        for invitation in pending:
            invitation.revoke()
        if pending:
            connection.record(
                EventKind.INVITATION_REVOKED,
                "The pending invitation code was revoked; it can no longer be accepted.",
                user=user,
            )
    return len(pending)


def _lock(connection: Connection) -> None:
    # Two admins clicking at once: the second sees the first one's result, which may be
    # that the first one deleted the connection.
    if not Connection.objects.select_for_update().filter(pk=connection.pk).exists():
        raise ConnectionGone(
            f"The connection \u201c{connection.name}\u201d no longer exists: it was deleted "
            "meanwhile (in another tab or by another admin). Nothing more was changed."
        )
    connection.refresh_from_db(
        fields=["status", "status_reason", "activated_at", "remote_status", "remote_status_at"]
    )


def _lock_awaiting_acceptance(connection: Connection, consequence: str) -> None:
    _lock(connection)
    if not connection.awaits_acceptance:
        raise ConnectionActionError(
            "Only a pending connection that this node initiated has an invitation code; "
            f"this one is {connection.status_in_words}, so {consequence}."
        )


def _queue_for_peer(
    connection: Connection, status: str, reason: str = ""
) -> PeerNotification | PeerNotice:
    """Queue the notification in the caller's transaction (so it cannot be lost)."""
    if not connection.is_paired:
        return PeerNotice(True, "")
    if connection.remote_status == RemoteStatus.DELETED:
        # The peer deleted its side and said so: a notification would only be refused.
        return PeerNotice(
            True, "The remote side had already deleted its side, so there was nobody to tell."
        )
    if connection.is_local:
        # Both sides live here: tell the other side directly. Calling ourselves over
        # HTTP could deadlock a single-worker server.
        peer = _local_peer(connection)
        if peer is None:
            return PeerNotice(False, "The other side of this local connection no longer exists.")
        peer.apply_remote_status(status, reason, changed_at=timezone.now())
        return PeerNotice(True, "The other side (on this node) was told.")
    if not connection.remote_url:
        return PeerNotice(
            False,
            "The remote instance is in a private network, which this node cannot call: "
            "tell its admin yourself.",
        )
    return PeerNotification.for_connection(connection, status, reason)


def _tell_now(queued: PeerNotification | PeerNotice) -> PeerNotice:
    """Try a freshly queued notification at once; the outbox retries it if this fails."""
    if isinstance(queued, PeerNotice):
        return queued
    claimed = PeerNotification.objects.filter(pk=queued.pk).unclaimed().claim(1)
    if not claimed:
        return PeerNotice(False, "The remote side will be told shortly.")
    notification = claimed[0]
    _send(notification)
    if notification.state == NotificationState.DELIVERED:
        return PeerNotice(True, "The remote side was told.")
    # The error is a sentence of its own ("Could not connect to …."): set it apart rather
    # than in parentheses, which read as "….)." on the page.
    error = notification.last_error.strip()
    if error and error[-1] not in ".!?":
        error += "."
    if notification.state == NotificationState.FAILED:
        # Settled for good (the peer no longer knows the connection): no retry follows.
        return PeerNotice(False, f"The remote side could not be told. {error}".strip())
    return PeerNotice(
        False,
        " ".join(
            part
            for part in ("The remote side could not be told yet.", error, "This node keeps trying.")
            if part
        ),
    )


# --- the outbox --------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed

    def count(self, notification: PeerNotification) -> None:
        if notification.state == NotificationState.DELIVERED:
            self.delivered += 1
        elif notification.state == NotificationState.FAILED:
            self.failed += 1
        else:
            self.retrying += 1


def deliver_pending_notifications(
    *, batch_size: int = 20, ignore_backoff: bool = False
) -> DeliveryReport:
    """Send every notification that is due, each at most once per run.

    Safe to run from several processes or servers at once: each claims its own rows.
    `ignore_backoff` sends pending rows whose next attempt is still ahead (an operator
    who knows the peer is back).
    """
    report = DeliveryReport()
    tried: set[int] = set()
    while True:
        pending = (
            PeerNotification.objects.unclaimed()
            if ignore_backoff
            else (PeerNotification.objects.due())
        )
        claimed = pending.exclude(pk__in=tried).claim(batch_size)
        if not claimed:
            return report
        for notification in claimed:
            tried.add(notification.pk)
            _send(notification)
            report.count(notification)


def retry_notifications_now(notifications) -> DeliveryReport:
    """Send these pending notifications now, whatever their backoff says (an operator's call)."""
    report = DeliveryReport()
    for notification in notifications.unclaimed().claim(100):
        _send(notification)
        report.count(notification)
    return report


def purge_settled_notifications(*, keep: timedelta = timedelta(days=30)) -> int:
    """Forget outbox rows that were settled more than `keep` ago; returns how many."""
    deleted, _ = PeerNotification.objects.settled_before(timezone.now() - keep).delete()
    return deleted


def _send(notification: PeerNotification) -> None:
    """One attempt at a claimed notification; the row records how it went."""
    path = f"/api/v1/connections/{notification.remote_connection_id}/status/"
    token = sign_token(
        key=notification.signing_key,
        issuer=str(GeneralSettings.load().uid),
        audience=str(notification.remote_uid),
        connection_id=notification.remote_connection_id,
    )
    body = {
        "status": notification.status,
        "reason": notification.reason,
        "at": notification.changed_at.isoformat(),
    }
    try:
        status, answer = client.request(
            "POST",
            notification.remote_url,
            path,
            json_body=body,
            headers={"Authorization": f"Bearer {token}"},
        )
    except client.NodeError as exc:
        notification.mark_attempt_failed(exc.message)
        logger.warning(
            "Notification %s to %s not delivered: %s",
            notification.pk,
            notification.remote_url,
            exc.kind,
        )
        return
    if status == 200:
        notification.mark_delivered()
        return
    failure = describe_rejection(status, answer)
    if failure.kind == "unknown_connection":
        # The peer no longer has this connection: no retry can change that.
        notification.mark_failed(failure.message)
    else:
        notification.mark_attempt_failed(failure.message)
    logger.warning(
        "Notification %s to %s refused: HTTP %s %s",
        notification.pk,
        notification.remote_url,
        status,
        failure.code,
    )


# --- testing a connection ---------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    kind: str  # "unknown_connection" | "rejected_token" | "unexpected"
    code: str
    message: str


def describe_rejection(status: int, answer) -> Rejection:
    """Put the peer's refusal in words: which of the known failures it is."""
    code = answer.get("code") if isinstance(answer, dict) else None
    code = code if isinstance(code, str) else ""
    detail = answer.get("detail") if isinstance(answer, dict) else None
    detail = f" It said: {detail[:200]}" if isinstance(detail, str) and detail else ""
    if code == "unknown_connection" or status == 404:
        return Rejection(
            "unknown_connection",
            code or "not_found",
            "The remote node does not know this connection (it may have been deleted there).",
        )
    if status in (401, 403):
        return Rejection(
            "rejected_token",
            code,
            f"The remote node rejected this node's token ({code or f'HTTP {status}'}).{detail}",
        )
    return Rejection(
        "unexpected", code, f"The remote node answered HTTP {status} ({code or 'no code'}).{detail}"
    )


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of "Test connection"."""

    ok: bool
    message: str
    failure: str = ""  # unreachable | timeout | rejected_token | unknown_connection | …
    round_trip_ms: int | None = None
    peer_status: str = ""


def test_connection(connection: Connection) -> ConnectionCheck:
    """Make an authenticated call to the peer and say how it went."""
    if not connection.is_paired:
        return ConnectionCheck(
            False,
            "This connection has no remote side yet: the invitation has not been accepted.",
            failure="not_paired",
        )
    started = time.perf_counter()
    if connection.is_local:
        peer = _local_peer(connection)
        elapsed = round((time.perf_counter() - started) * 1000)
        if peer is None:
            return ConnectionCheck(
                False,
                "The other side of this local connection no longer exists.",
                failure="unknown_connection",
            )
        return _answered(peer.status, elapsed)
    if not connection.remote_url:
        return ConnectionCheck(
            False,
            "The remote instance is in a private network: this node cannot call it.",
            failure="private_network",
        )
    path = f"/api/v1/connections/{connection.remote_connection_id}/"
    try:
        status, answer = client.request(
            "GET",
            connection.remote_url,
            path,
            headers={"Authorization": f"Bearer {token_for(connection)}"},
        )
    except client.NodeError as exc:
        kind = {"timeout": "timeout", "unreachable": "unreachable", "blocked": "unreachable"}
        failure = kind.get(exc.kind, exc.kind)
        what = "timed out" if failure == "timeout" else "unreachable"
        return ConnectionCheck(False, f"Remote node {what}: {exc.message}", failure=failure)
    elapsed = round((time.perf_counter() - started) * 1000)
    if status == 200 and isinstance(answer.get("status"), str):
        return _answered(answer["status"], elapsed)
    rejection = describe_rejection(status, answer)
    return ConnectionCheck(False, rejection.message, failure=rejection.kind, round_trip_ms=elapsed)


# Not a pytest test, whatever its name says.
test_connection.__test__ = False  # type: ignore[attr-defined]


def _answered(peer_status: str, elapsed_ms: int) -> ConnectionCheck:
    label = dict(Status.choices).get(peer_status, peer_status)
    return ConnectionCheck(
        True,
        f"The remote side answered in {elapsed_ms} ms; its side is {label.lower()}.",
        round_trip_ms=elapsed_ms,
        peer_status=peer_status,
    )


def _local_peer(connection: Connection) -> Connection | None:
    try:
        return Connection.objects.filter(pk=connection.remote_connection_id).first()
    except (ValidationError, ValueError):
        return None
