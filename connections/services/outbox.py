"""Delivering the outbox: telling peers what this side did, until they have heard it."""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from connections.auth import sign_token
from connections.models import Connection, NotificationState, PeerNotification
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
    *, batch_size: int = 50, ignore_backoff: bool = False
) -> DeliveryReport:
    """Send every notification that is due, each at most once per run.

    Safe to run from several processes or servers at once: each claims its own rows.
    `ignore_backoff` sends pending rows whose next attempt is still ahead (an operator
    who knows the peer is back).

    Batches overlap: while one batch's calls are out, the next batch is claimed and its
    calls queued behind them, so the senders never wait on the database and the database
    work never waits on a peer. A batch costs one commit whatever its size: the
    transaction that settles it (one update for all the notifications the peers took in)
    also claims the batch after next. Only a failure is recorded row by row.
    """
    report = DeliveryReport()
    # Tried and still pending (to retry, or taken over by another sender): not again in
    # this run. Delivered and failed rows are no longer pending, so need no exclusion.
    retrying: set[int] = set()
    in_flight: deque[_Batch] = deque()

    def claim() -> list[PeerNotification]:
        pending = (
            PeerNotification.objects.unclaimed()
            if ignore_backoff
            else PeerNotification.objects.due()
        )
        # The lease covers the calls queued ahead of this batch too.
        ahead = sum(len(batch.calls) for batch in in_flight)
        # A peer without a URL collects its notifications when it pulls (hand_over).
        return (
            pending.exclude(pk__in=retrying)
            .exclude(remote_url="")
            .claim(batch_size, lease=lease_for(ahead + batch_size))
        )

    issuer = ""  # read once per run, at the first batch: the uid does not change
    claimed = claim()
    while claimed or in_flight:
        if claimed:
            issuer = issuer or this_node_uid()
            in_flight.append(_Batch.start(claimed, issuer))
            if len(in_flight) < BATCHES_IN_FLIGHT:
                claimed = claim()
                continue
        batch = in_flight.popleft()
        taken_in = batch.finish()
        with transaction.atomic():
            PeerNotification.mark_all_delivered(taken_in)
            for notification in batch.notifications:
                report.count(notification)
                if notification.state == NotificationState.PENDING:
                    retrying.add(notification.pk)
            claimed = claim()
    return report


def hand_over(connection: Connection) -> dict | None:
    """What a peer that cannot be called (it gave no URL) is told when it pulls
    (sync/services/pull.py): this side's newest status report, as `POST …/status/` would
    carry it; None when this side never reported one. Handing it over delivers it.

    It is handed over at every pull, not only once: the peer ignores a report it already
    has (by its time), and one lost on the way is simply handed over again.
    """
    latest = (
        connection.notifications.exclude(state=NotificationState.CANCELLED)
        .order_by("-created_at", "-id")
        .first()
    )
    if latest is None:
        return None
    connection.notifications.pending().filter(remote_url="", pk__lte=latest.pk).update(
        state=NotificationState.DELIVERED,
        delivered_at=timezone.now(),
        signing_key="",
        claimed_until=None,
    )
    return StatusReportSerializer(latest).data


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
# per host): a slow or unreachable peer holds up one of them, not the whole batch.
SEND_AT_ONCE = 4
# Batches whose calls are out or queued at once: the next batch is claimed and queued
# while the last one's calls are out.
BATCHES_IN_FLIGHT = 2


def lease_for(calls: int) -> timedelta:
    """How long a claim must hold when `calls` calls (its own and those queued ahead of
    it) go out SEND_AT_ONCE at a time, each taking at worst its whole time limit and one
    more read: longer than that, and another sender would take the rows over and tell
    the peer twice."""
    worst_call = client.TOTAL_TIMEOUT + client.READ_TIMEOUT
    return timedelta(seconds=worst_call * -(-calls // SEND_AT_ONCE) + 30)


@dataclass
class _Call:
    notification: PeerNotification
    path: str
    body: dict
    token: str
    status: int = 0
    answer: dict | None = None
    error: client.NodeError | None = None


@dataclass
class _Batch:
    """A claimed batch whose calls are out: `finish` waits for them and records how each
    went. Only the calls run in the sending threads; the database is used from the
    caller's thread alone, before and after them."""

    notifications: list[PeerNotification]
    calls: list[_Call]
    futures: list[Future]

    @classmethod
    def start(cls, notifications: list[PeerNotification], issuer: str) -> _Batch:
        # One serializer for the batch: building one per notification (DRF copies its
        # fields each time) cost more than signing the token.
        report = StatusReportSerializer()
        calls = [_call_for(notification, issuer, report) for notification in notifications]
        pool = _senders()
        return cls(notifications, calls, [pool.submit(_post, call) for call in calls])

    def finish(self) -> list[PeerNotification]:
        """The notifications the peers took in, which the caller settles as delivered
        (one update for a batch). A failure is recorded on its row here, for a retry
        after the backoff or for good."""
        for future in self.futures:
            future.result()
        return [call.notification for call in self.calls if _record(call)]


def send_batch(notifications: list[PeerNotification], *, issuer: str) -> list[PeerNotification]:
    """Send claimed notifications once each; returns those the peers took in."""
    return _Batch.start(notifications, issuer).finish()


# The sending threads live as long as the process (a worker sends batch after batch):
# starting four threads per batch cost more than a batch's database work.
_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] = (0, 0)
_pool_lock = threading.Lock()


def _senders() -> ThreadPoolExecutor:
    global _pool, _pool_key
    key = (os.getpid(), SEND_AT_ONCE)  # a forked process starts its own threads
    with _pool_lock:
        if _pool is None or _pool_key != key:
            _pool = ThreadPoolExecutor(max_workers=SEND_AT_ONCE, thread_name_prefix="outbox")
            _pool_key = key
        return _pool


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
