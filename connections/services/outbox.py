"""Delivering the outbox: telling peers what this side did, until they have heard it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django import db
from django.db import transaction
from django.utils import timezone

from connections.auth import sign_token
from connections.models import NotificationState, PeerNotification
from connections.serializers import StatusReportSerializer
from connections.services.peer import describe_rejection
from nodes import client
from nodes.models import GeneralSettings

logger = logging.getLogger(__name__)

# Workers LISTEN on this channel (PostgreSQL); queuing a notification NOTIFYs it.
CHANNEL = "exalate_outbox"
# Without LISTEN/NOTIFY (SQLite, the embedded default) a worker looks this often.
POLL_SECONDS = 0.5


def wake_workers() -> None:
    """Once this transaction commits, wake every worker waiting for outbox work."""
    if db.connection.vendor == "postgresql":
        transaction.on_commit(_notify)


def _notify() -> None:
    with db.connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


def wait_for_work(timeout: float) -> None:
    """Return when work was queued (PostgreSQL: at once, by NOTIFY) or after `timeout`."""
    if db.connection.vendor != "postgresql":
        time.sleep(min(timeout, POLL_SECONDS))
        return
    db.connection.ensure_connection()
    listener = db.connection.connection  # the psycopg connection, in autocommit
    listener.execute(f"LISTEN {CHANNEL}")
    for _notice in listener.notifies(timeout=timeout, stop_after=1):
        break


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
            send_notification(notification)
            report.count(notification)


def send_soon(notifications) -> int:
    """Make these pending notifications due now, whatever their backoff says (an operator
    who knows the peer is back), and wake the workers; returns how many. The worker sends
    them: the operator's request never waits on a peer."""
    with transaction.atomic():
        count = notifications.unclaimed().update(next_attempt_at=timezone.now())
        if count:
            wake_workers()
    return count


def purge_settled_notifications(*, keep: timedelta = timedelta(days=30)) -> int:
    """Forget outbox rows that were settled more than `keep` ago; returns how many."""
    deleted, _ = PeerNotification.objects.settled_before(timezone.now() - keep).delete()
    return deleted


def send_notification(notification: PeerNotification) -> None:
    """One attempt at a claimed notification; the row records how it went."""
    path = f"/api/v1/connections/{notification.remote_connection_id}/status/"
    token = sign_token(
        key=notification.signing_key,
        issuer=str(GeneralSettings.load().uid),
        audience=str(notification.remote_uid),
        connection_id=notification.remote_connection_id,
    )
    body = StatusReportSerializer(notification).data
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
