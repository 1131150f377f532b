"""What an admin does to a connection (page or admin action), and queuing word to the peer."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from connections.models import (
    Connection,
    ConnectionEvent,
    EventKind,
    NotificationState,
    PeerNotification,
    RemoteStatus,
    Status,
)
from connections.serializers import StatusReportSerializer
from connections.services.outbox import send_notification
from nodes.models import GeneralSettings
from nodes.wakeup import wake_workers

logger = logging.getLogger(__name__)


class ConnectionActionError(ValueError):
    """The action does not fit the connection's current state; the message says why."""


class ConnectionGone(ConnectionActionError):
    """The connection was deleted while the action waited (another tab, another admin)."""


@dataclass(frozen=True)
class PeerNotice:
    """What became of telling the peer about a change on this side.

    An action never calls the peer itself: it queues the notification in its own
    transaction (`queued`), and the worker (`run_worker`) delivers it moments later, so
    a page or an admin action answers at once however slow or hung the peer is.
    """

    # The peer knows already, or nobody needs telling.
    told: bool
    message: str
    # Waiting in the outbox for the worker: the normal case, no cause for concern.
    queued: PeerNotification | None = None
    # The peer cannot be called, but hears of it when its node next pulls (queued or not).
    by_pull: bool = False

    @property
    def needs_attention(self) -> bool:
        """Nothing will tell the peer: its admin must hear of it another way."""
        return not self.told and self.queued is None and not self.by_pull


QUEUED_MESSAGE = "The remote side will be told in a moment."
# A peer in a private network asks this node for what waits for it every few seconds
# (SYNC_PULL_SECONDS; up to a minute while this side is inactive).
PULL_MESSAGE = (
    "The remote instance is in a private network, which this node cannot call: it will be "
    "told when its node next asks this one (within a minute while its side is active)."
)
PULL_DELETED_MESSAGE = (
    "The remote instance is in a private network, which this node cannot call: its node "
    "will find this connection gone the next time it asks this one (within a minute while "
    "its side is active), and mark its side in error."
)


def record_remote_status(
    connection: Connection, status: str, *, reason: str = "", changed_at=None
) -> bool:
    """The peer reported its side's status; False when the report was older than one we have."""
    applied = connection.apply_remote_status(status, reason, changed_at=changed_at)
    if not applied:
        logger.info("Ignored a stale status report for connection %s", connection.pk)
    return applied


def record_handed_over_status(connection: Connection, report: object) -> bool:
    """The status report a pull brought back (the peer's `outbox.hand_over`), checked as
    `POST …/status/` checks one; False when it was stale or is not a report at all."""
    serializer = StatusReportSerializer(data=report)
    if not serializer.is_valid():
        logger.warning("Ignored a malformed status report pulled for connection %s", connection.pk)
        return False
    data = serializer.validated_data
    return record_remote_status(
        connection, data["status"], reason=data["reason"], changed_at=data.get("changed_at")
    )


@dataclass
class Outcome:
    """What became of one connection in an action over one or many."""

    connection: Connection
    notice: PeerNotice | None = None
    # Why the action did not fit this connection (nothing was changed on it).
    refused: ConnectionActionError | None = None


def deactivate_connection(connection: Connection, user=None, *, reason: str = "") -> PeerNotice:
    """Stop the connection on this side at once; the worker tells the peer moments later."""
    return _only(connection, deactivate_connections([connection], user, reason=reason)).notice


def activate_connection(connection: Connection, user=None) -> PeerNotice:
    """Start a deactivated connection again on this side; the worker tells the peer."""
    return _only(connection, activate_connections([connection], user)).notice


def delete_connection(connection: Connection, user=None) -> PeerNotice:
    """Delete this side; its events stay (for staff) and the worker tells the peer.

    The outbox row carries its own copy of what it needs to sign and send, since the
    connection row is gone by the time a retry runs.
    """
    return _only(connection, delete_connections([connection], user)).notice


# The same actions over many connections (the admin's bulk actions): in one transaction,
# a few statements whatever their number (bulk updates and inserts), and no call to any peer.


def deactivate_connections(
    connections: Iterable[Connection], user=None, *, reason: str = ""
) -> list[Outcome]:
    """Deactivate those that are active; the others are refused, each with the reason."""
    with transaction.atomic():
        outcomes, fitting = _lock(connections, _refuse_deactivating)
        Connection.change_status_of_many(
            fitting,
            Status.DEACTIVATED,
            EventKind.DEACTIVATED,
            user=user,
            reason=reason,
            message=reason or "Connection deactivated.",
        )
        _queue_for_peers(outcomes, fitting, RemoteStatus.DEACTIVATED, reason)
    return list(outcomes.values())


def activate_connections(connections: Iterable[Connection], user=None) -> list[Outcome]:
    """Activate those that are deactivated; the others are refused, each with the reason."""
    with transaction.atomic():
        outcomes, fitting = _lock(connections, _refuse_activating)
        Connection.change_status_of_many(
            fitting, Status.ACTIVE, EventKind.ACTIVATED, user=user, message="Connection activated."
        )
        _queue_for_peers(outcomes, fitting, RemoteStatus.ACTIVE)
    return list(outcomes.values())


def delete_connections(connections: Iterable[Connection], user=None) -> list[Outcome]:
    """Delete them (any status); each one's history stays, and its peer is told."""
    with transaction.atomic():
        outcomes, fitting = _lock(connections, lambda row: None)
        ConnectionEvent.objects.bulk_create(
            connection.event(
                EventKind.DELETED,
                f"Connection deleted (it was {connection.get_status_display().lower()}).",
                user=user,
                from_status=connection.status,
            )
            for connection in fitting
        )
        _queue_for_peers(outcomes, fitting, RemoteStatus.DELETED)
        Connection.objects.filter(pk__in=[c.pk for c in fitting]).delete()
    return list(outcomes.values())


def confirm_to_peer(connection: Connection) -> PeerNotice:
    """Queue telling the issuer that this side (just made from its code) exists, so that
    its side, waiting for this, goes active. Call it in the transaction that stores this
    side: the two cannot part. The worker delivers it, retrying until the issuer hears."""
    outcomes = {connection.pk: Outcome(connection)}
    with transaction.atomic():
        _queue_for_peers(outcomes, [connection], RemoteStatus.ACTIVE)
    return outcomes[connection.pk].notice


def lock_connection(connection: Connection) -> None:
    """Lock the connection's row for this transaction and read its state afresh."""
    outcomes, _fitting = _lock([connection], lambda row: None)
    _only(connection, outcomes.values())


def _lock(
    connections: Iterable[Connection], refusal: Callable[[Connection], str | None]
) -> tuple[dict[uuid.UUID, Outcome], list[Connection]]:
    """Lock the rows for this transaction and read them afresh: two admins clicking at
    once, the second sees the first one's result (which may be that the first one deleted
    the connection). Returns an outcome per connection asked for, and the fresh rows that
    the action fits."""
    asked = {connection.pk: connection for connection in connections}
    # Locked in one order, so that two bulk actions over overlapping rows wait for each
    # other instead of deadlocking (PostgreSQL; SQLite's write transactions queue anyway).
    rows = Connection.objects.select_for_update().filter(pk__in=list(asked)).order_by("pk")
    fresh = {row.pk: row for row in rows}
    outcomes: dict[uuid.UUID, Outcome] = {}
    fitting: list[Connection] = []
    for pk, connection in asked.items():
        row = fresh.get(pk)
        if row is None:
            outcomes[pk] = Outcome(connection, refused=ConnectionGone(_gone(connection)))
        elif why := refusal(row):
            outcomes[pk] = Outcome(row, refused=ConnectionActionError(why))
        else:
            outcomes[pk] = Outcome(row)
            fitting.append(row)
    return outcomes, fitting


def _gone(connection: Connection) -> str:
    return (
        f"The connection \u201c{connection.name}\u201d no longer exists: it was deleted "
        "meanwhile (in another tab or by another admin). Nothing more was changed."
    )


def _refuse_deactivating(connection: Connection) -> str | None:
    if connection.can_deactivate:
        return None
    return (
        f"Only an active connection can be deactivated; this one is {connection.status_in_words}."
    )


def _refuse_activating(connection: Connection) -> str | None:
    if connection.can_activate:
        return None
    return (
        f"Only a deactivated connection can be activated; this one is {connection.status_in_words}."
    )


def _only(connection: Connection, outcomes: Iterable[Outcome]) -> Outcome:
    """The single-connection form: raise the refusal, or take the fresh row's state into
    the caller's instance."""
    [outcome] = list(outcomes)
    if outcome.refused is not None:
        raise outcome.refused
    for name in FRESH_FIELDS:
        setattr(connection, name, getattr(outcome.connection, name))
    return outcome


FRESH_FIELDS = ["status", "status_reason", "activated_at", "remote_status", "remote_status_at"]


def _queue_for_peers(
    outcomes: dict[uuid.UUID, Outcome], connections: list[Connection], status: str, reason: str = ""
) -> None:
    """Queue the notifications in the caller's transaction (so none can be lost) and set
    each outcome's notice; no call to any peer is made here."""
    queue = []
    this_node = GeneralSettings.load().uid  # once, not once per connection
    for connection in connections:
        notice = _notice_without_outbox(connection, status, reason, this_node)
        if notice is None:
            queue.append(connection)
        else:
            outcomes[connection.pk].notice = notice
    for notification in PeerNotification.for_connections(queue, status, reason):
        by_pull = not notification.remote_url
        outcomes[notification.connection_id].notice = PeerNotice(
            False, PULL_MESSAGE if by_pull else QUEUED_MESSAGE, notification, by_pull
        )
    if any(connection.remote_url for connection in queue):
        wake_workers()


def _notice_without_outbox(
    connection: Connection, status: str, reason: str, this_node: uuid.UUID
) -> PeerNotice | None:
    """The notice for a connection whose peer the outbox does not tell; None for the
    others (the usual case)."""
    if not connection.is_paired:
        return PeerNotice(True, "")
    if connection.remote_status == RemoteStatus.DELETED:
        # The peer deleted its side and said so: a notification would only be refused.
        return PeerNotice(
            True, "The remote side had already deleted its side, so there was nobody to tell."
        )
    if connection.remote_uid == this_node:  # `is_local`, without reading the settings again
        # Both sides live here: tell the other side directly, in this transaction. Calling
        # ourselves over HTTP could deadlock a single-worker server.
        peer = connection.local_peer()
        if peer is None:
            return PeerNotice(False, "The other side of this local connection no longer exists.")
        peer.apply_remote_status(status, reason, changed_at=timezone.now())
        return PeerNotice(True, "The other side (on this node) was told.")
    if not connection.remote_url and status == RemoteStatus.DELETED:
        # Nothing is left here to hand over: the peer's next pull finds the connection
        # unknown, which tells it just as well.
        return PeerNotice(False, PULL_DELETED_MESSAGE, by_pull=True)
    return None


def tell_peer_now(notice: PeerNotice) -> PeerNotice:
    """Try a queued notification at once, for a caller that is no web request and waits
    anyway (a command at a shell); the worker retries it if this fails.

    Never from a view or an admin action: a hung peer would hold the request (and, over a
    bulk action, the server's worker) for the client's whole timeout per connection.
    """
    if notice.queued is None or not notice.queued.remote_url:
        return notice  # nothing to send, or nothing to call: the peer pulls it
    claimed = PeerNotification.objects.filter(pk=notice.queued.pk).unclaimed().claim(1)
    if not claimed:
        # The worker took it first (or it was superseded meanwhile): it is on its way.
        return notice
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
        queued=notification,
    )
