"""Delivering the outbox: telling peers what this side did, until they have heard it."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from connections.auth import sign_token
from connections.models import NotificationState, PeerNotification
from connections.serializers import StatusReportSerializer
from connections.services.peer import describe_rejection
from nodes import client
from nodes.models import GeneralSettings
from nodes.wakeup import wake_workers

logger = logging.getLogger(__name__)


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

    A batch costs one commit whatever its size: the transaction that settles it (one
    update for all the notifications the peers took in) also claims the next batch. Only
    a failure is recorded row by row, as it happens.
    """
    report = DeliveryReport()
    # Tried and still pending (to retry, or taken over by another sender): not again in
    # this run. Delivered and failed rows are no longer pending, so need no exclusion.
    retrying: set[int] = set()
    claimed = _claim_batch(batch_size, ignore_backoff=ignore_backoff, leave_out=retrying)
    issuer = this_node_uid() if claimed else ""  # once per run: the uid does not change
    while claimed:
        taken_in = send_batch(claimed, issuer=issuer)
        with transaction.atomic():
            PeerNotification.mark_all_delivered(taken_in)
            for notification in claimed:
                report.count(notification)
                if notification.state == NotificationState.PENDING:
                    retrying.add(notification.pk)
            claimed = _claim_batch(batch_size, ignore_backoff=ignore_backoff, leave_out=retrying)
    return report


def _claim_batch(
    batch_size: int, *, ignore_backoff: bool, leave_out: set[int]
) -> list[PeerNotification]:
    pending = (
        PeerNotification.objects.unclaimed() if ignore_backoff else PeerNotification.objects.due()
    )
    return pending.exclude(pk__in=leave_out).claim(batch_size)


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


def this_node_uid() -> str:
    """The uid this node signs its tokens with (the issuer the peer checks)."""
    return str(GeneralSettings.load().uid)


def send_notification(notification: PeerNotification) -> None:
    """One attempt at a claimed notification; the row records how it went."""
    if send_batch([notification], issuer=this_node_uid()):
        notification.mark_delivered()


# A batch's calls go out this many at a time (nodes.client keeps as many connections open
# per host): a slow or unreachable peer holds up one of them, not the whole batch, whose
# claim is a lease of two minutes.
SEND_AT_ONCE = 4


@dataclass
class _Call:
    notification: PeerNotification
    path: str
    body: dict
    token: str
    status: int = 0
    answer: dict | None = None
    error: client.NodeError | None = None


def send_batch(notifications: list[PeerNotification], *, issuer: str) -> list[PeerNotification]:
    """Send claimed notifications once each; returns those the peers took in, which the
    caller settles as delivered (one update for a batch). A failure is recorded on its row
    here, for a retry after the backoff or for good.

    Only the calls themselves run side by side, in threads; the database is used from
    this thread alone, before and after them.
    """
    # One serializer for the batch: building one per notification (DRF copies its fields
    # each time) cost more than signing the token.
    report = StatusReportSerializer()
    calls = [_call_for(notification, issuer, report) for notification in notifications]
    if len(calls) > 1:
        with ThreadPoolExecutor(max_workers=min(SEND_AT_ONCE, len(calls))) as pool:
            list(pool.map(_post, calls))
    else:
        for call in calls:
            _post(call)
    return [call.notification for call in calls if _record(call)]


def _call_for(notification: PeerNotification, issuer: str, report: StatusReportSerializer) -> _Call:
    return _Call(
        notification,
        path=f"/api/v1/connections/{notification.remote_connection_id}/status/",
        body=report.to_representation(notification),
        token=sign_token(
            key=notification.signing_key,
            issuer=issuer,
            audience=str(notification.remote_uid),
            connection_id=notification.remote_connection_id,
        ),
    )


def _post(call: _Call) -> None:
    """The call to the peer, and nothing else (it may run in a thread of a batch)."""
    try:
        call.status, call.answer = client.request(
            "POST",
            call.notification.remote_url,
            call.path,
            json_body=call.body,
            headers={"Authorization": f"Bearer {call.token}"},
        )
    except client.NodeError as exc:
        call.error = exc


def _record(call: _Call) -> bool:
    """True when the peer took the notification in; else record the failure on the row."""
    notification = call.notification
    if call.error is not None:
        notification.mark_attempt_failed(call.error.message)
        logger.warning(
            "Notification %s to %s not delivered: %s",
            notification.pk,
            notification.remote_url,
            call.error.kind,
        )
        return False
    if call.status == 200:
        return True
    failure = describe_rejection(call.status, call.answer)
    if failure.kind == "unknown_connection":
        # The peer no longer has this connection: no retry can change that.
        notification.mark_failed(failure.message)
    else:
        notification.mark_attempt_failed(failure.message)
    logger.warning(
        "Notification %s to %s refused: HTTP %s %s",
        notification.pk,
        notification.remote_url,
        call.status,
        failure.code,
    )
    return False
