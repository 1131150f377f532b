"""Delivering the outbox: telling peers what this side did, until they have heard it."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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

# Rows a sender claims at once. A claim and its settle cost some milliseconds of database
# and ORM work whatever their size: claims of 200 instead of 50 made the delivery of 200
# notifications 1.2 times faster.
BATCH_SIZE = 200


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
    *, batch_size: int = BATCH_SIZE, ignore_backoff: bool = False
) -> DeliveryReport:
    """Send every notification that is due, each at most once per run.

    Safe to run from several processes or servers at once: each claims its own rows.
    `ignore_backoff` sends pending rows whose next attempt is still ahead (an operator
    who knows the peer is back).

    Batches overlap: while one batch's calls are out, the next batch is claimed and its
    calls queued behind them, so the senders never wait on the database and the database
    work never waits on a peer. A batch costs one commit whatever its size: the
    transaction that settles it (one update for all the notifications the peers took in)
    also claims the batch after next. Only a failure is recorded row by row. A claim that
    comes back short ends the claiming: rows queued after it wait for the next run, which
    the worker starts as soon as it is woken.
    """
    report = DeliveryReport()
    # Tried and still pending (to retry, or taken over by another sender): not again in
    # this run. Delivered and failed rows are no longer pending, so need no exclusion.
    retrying: set[int] = set()
    in_flight: deque[_Batch] = deque()
    drained = False

    def claim(size: int) -> list[PeerNotification]:
        nonlocal drained
        if drained:
            return []
        pending = (
            PeerNotification.objects.unclaimed()
            if ignore_backoff
            else PeerNotification.objects.due()
        )
        # The lease covers the calls queued ahead of this batch too.
        ahead = sum(len(batch.calls) for batch in in_flight)
        # A peer without a URL collects its notifications when it pulls (hand_over).
        claimed = (
            pending.exclude(pk__in=retrying)
            .exclude(remote_url="")
            .claim(size, lease=lease_for(ahead + size))
        )
        drained = len(claimed) < size
        return claimed

    issuer = ""  # read once per run, at the first batch: the uid does not change
    claimed = claim(batch_size)
    while claimed or in_flight:
        if claimed:
            issuer = issuer or this_node_uid()
            in_flight.append(_Batch.start(claimed, issuer))
            if len(in_flight) < BATCHES_IN_FLIGHT:
                claimed = claim(batch_size)
                continue
        batch = in_flight.popleft()
        taken_in = batch.finish()
        with transaction.atomic():
            PeerNotification.mark_all_delivered(taken_in)
            for notification in batch.notifications:
                report.count(notification)
                if notification.state == NotificationState.PENDING:
                    retrying.add(notification.pk)
            claimed = claim(batch_size)
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


# A batch's calls go out in one sending thread, one after another, while the database work
# goes on in the caller's thread: to a peer that answers at once, that costs the least.
# When a call is out for longer than SLOW_CALL (a slow or hung peer), another sending
# thread joins, up to SEND_AT_ONCE (nodes.client keeps as many connections open per
# host): a slow or unreachable peer then holds up one of them, not the whole batch.
SEND_AT_ONCE = 4
SLOW_CALL = 0.05
PUT_AT_ONCE = 10
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


@dataclass(eq=False)
class _Call:
    notification: PeerNotification
    path: str
    body: dict
    token: str
    batch: _Batch | None = None
    status: int = 0
    answer: dict | None = None
    error: client.NodeError | None = None


@dataclass(eq=False)
class _Batch:
    """A claimed batch whose calls are out: `finish` waits for them and records how each
    went. Only the calls run in the sending threads; the database is used from the
    caller's thread alone, before and after them."""

    notifications: list[PeerNotification]
    calls: list[_Call]
    left: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(cls, notifications: list[PeerNotification], issuer: str) -> _Batch:
        # One serializer for the batch: building one per notification (DRF copies its
        # fields each time) cost more than signing the token.
        report = StatusReportSerializer()
        batch = cls(notifications, [], left=len(notifications))
        if not notifications:
            batch.done.set()
        sender = _sender()
        # Handed to the sender a few at a time: the first calls go out while the rest are
        # still being signed.
        for first in range(0, len(notifications), PUT_AT_ONCE):
            calls = [
                _call_for(notification, issuer, report, batch)
                for notification in notifications[first : first + PUT_AT_ONCE]
            ]
            batch.calls.extend(calls)
            sender.put(calls)
        return batch

    def finish(self) -> list[PeerNotification]:
        """The notifications the peers took in, which the caller settles as delivered
        (one update for a batch). A failure is recorded on its row here, for a retry
        after the backoff or for good."""
        sender = _sender()
        while not self.done.wait(SLOW_CALL):
            sender.widen()
        return [call.notification for call in self.calls if _record(call)]

    def call_done(self) -> None:
        with _Sender.counting:
            self.left -= 1
            if self.left == 0:
                self.done.set()


def send_batch(notifications: list[PeerNotification], *, issuer: str) -> list[PeerNotification]:
    """Send claimed notifications once each; returns those the peers took in."""
    return _Batch.start(notifications, issuer).finish()


class _Sender:
    """The process's sending threads and the queue of calls they take, in order.

    The threads live as long as the process (a worker sends batch after batch): starting
    threads per batch cost more than a batch's database work. One thread sends while the
    calls are quick: more threads sending to a peer that answers at once only fight over
    the interpreter, which made a batch 1.5 times slower. `widen` adds one when a call
    has been out for longer than SLOW_CALL and others wait behind it.
    """

    counting = threading.Lock()

    def __init__(self, most: int):
        self.most = most
        self.queue: deque[_Call] = deque()
        self.lock = threading.Lock()
        self.sending: dict[int, float] = {}  # thread → when its call went out
        self.threads = 0
        self.pool = ThreadPoolExecutor(max_workers=most, thread_name_prefix="outbox")

    def put(self, calls: list[_Call]) -> None:
        with self.lock:
            self.queue.extend(calls)
            if calls and self.threads == 0:
                self._add_thread()

    def widen(self) -> None:
        """Another sending thread if calls wait behind one that is slow to answer."""
        with self.lock:
            if not self.queue or self.threads >= self.most:
                return
            slow_since = time.monotonic() - SLOW_CALL
            if self.threads == 0 or any(t < slow_since for t in self.sending.values()):
                self._add_thread()

    def _add_thread(self) -> None:  # with self.lock held
        self.threads += 1
        self.pool.submit(self._send_all)

    def _send_all(self) -> None:
        me = threading.get_ident()
        while True:
            with self.lock:
                self.sending.pop(me, None)
                if not self.queue:
                    self.threads -= 1
                    return
                call = self.queue.popleft()
                self.sending[me] = time.monotonic()
            try:
                _post(call)
            except Exception as exc:  # a bug must not leave the batch waiting forever
                logger.exception("Notification %s: the call failed", call.notification.pk)
                call.error = client.NodeError("error", f"The call failed: {exc}")
            finally:
                call.batch.call_done()


_senders: dict[tuple[int, int], _Sender] = {}
_senders_lock = threading.Lock()


def _sender() -> _Sender:
    key = (os.getpid(), SEND_AT_ONCE)  # a forked process starts its own threads
    with _senders_lock:
        if key not in _senders:
            _senders.clear()
            _senders[key] = _Sender(SEND_AT_ONCE)
        return _senders[key]


def _call_for(
    notification: PeerNotification, issuer: str, report: StatusReportSerializer, batch: _Batch
) -> _Call:
    return _Call(
        notification,
        batch=batch,
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
