"""What an admin does to a connection (page or admin action), and telling the peer."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from connections.models import (
    Connection,
    EventKind,
    NotificationState,
    PeerNotification,
    RemoteStatus,
)
from connections.services.outbox import send_notification, wake_workers

logger = logging.getLogger(__name__)


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
        lock_connection(connection)
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
        lock_connection(connection)
        if not connection.can_activate:
            raise ConnectionActionError(
                f"Only a deactivated connection can be activated; this one is "
                f"{connection.status_in_words}."
            )
        connection.activate(user=user)
        notification = _queue_for_peer(connection, RemoteStatus.ACTIVE)
    return _tell_now(notification)


def confirm_to_peer(connection: Connection) -> PeerNotice:
    """Tell the issuer that this side (just made from its code) exists, so that its side,
    waiting for this, goes active. Retried by the outbox when the issuer is not reached."""
    with transaction.atomic():
        notification = _queue_for_peer(connection, RemoteStatus.ACTIVE)
    return _tell_now(notification)


def delete_connection(connection: Connection, user=None) -> PeerNotice:
    """Delete this side; its events stay (for staff) and the peer is told.

    The outbox row carries its own copy of what it needs to sign and send, since the
    connection row is gone by the time a retry runs.
    """
    with transaction.atomic():
        lock_connection(connection)
        connection.record(
            EventKind.DELETED,
            f"Connection deleted (it was {connection.get_status_display().lower()}).",
            user=user,
            from_status=connection.status,
        )
        queued = _queue_for_peer(connection, RemoteStatus.DELETED)
        connection.delete()
    return _tell_now(queued)


def lock_connection(connection: Connection) -> None:
    """Lock the connection's row for this transaction and read its state afresh."""
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
        peer = connection.local_peer()
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
    notification = PeerNotification.for_connection(connection, status, reason)
    wake_workers()
    return notification


def _tell_now(queued: PeerNotification | PeerNotice) -> PeerNotice:
    """Try a freshly queued notification at once; the outbox retries it if this fails."""
    if isinstance(queued, PeerNotice):
        return queued
    claimed = PeerNotification.objects.filter(pk=queued.pk).unclaimed().claim(1)
    if not claimed:
        return PeerNotice(False, "The remote side will be told shortly.")
    notification = claimed[0]
    send_notification(notification)
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
