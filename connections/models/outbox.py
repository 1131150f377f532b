"""The outbox: what the peer of a connection must still be told, until it has heard it."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from django.db import connections as db_connections
from django.db import models, transaction
from django.utils import timezone

from connections.models.connection import Connection, RemoteStatus
from nodes.fields import EncryptedTextField, NodeURLField


class NotificationState(models.TextChoices):
    PENDING = "pending", "Not delivered yet"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed for good"


class PeerNotificationQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(state=NotificationState.PENDING)

    def unclaimed(self, now: datetime | None = None):
        """Pending notifications that no sender is holding right now."""
        now = now or timezone.now()
        return self.pending().filter(
            models.Q(claimed_until__isnull=True) | models.Q(claimed_until__lte=now)
        )

    def due(self, now: datetime | None = None):
        """Unclaimed pending notifications whose next attempt has come."""
        now = now or timezone.now()
        return self.unclaimed(now).filter(next_attempt_at__lte=now)

    def latest_unheard(self) -> PeerNotification | None:
        """The newest of these notifications if the peer has not heard it: waiting for the
        worker or for a retry (pending), or given up on (failed). None when the peer is up
        to date, or was never to be told anything."""
        latest = self.order_by("-created_at", "-id").first()
        if latest is not None and latest.state in (
            NotificationState.PENDING,
            NotificationState.FAILED,
        ):
            return latest
        return None

    def cancel(self, why: str) -> int:
        """Settle these rows unsent; the signing key goes with them."""
        return self.update(state=NotificationState.CANCELLED, last_error=why, signing_key="")

    def settled_before(self, moment: datetime):
        """Rows nobody needs any more (delivered, cancelled or failed long enough ago)."""
        return self.exclude(state=NotificationState.PENDING).filter(created_at__lt=moment)

    def claim(self, limit: int, *, lease: timedelta | None = None) -> list[PeerNotification]:
        """Take up to `limit` of these rows for sending, so that no other sender takes them.

        On PostgreSQL the rows are locked with SELECT … FOR UPDATE SKIP LOCKED, so
        senders on several servers each get different rows without waiting for each
        other; on SQLite the write transaction itself keeps senders apart. The claim is a
        lease, not a lock held during the call: the lock lasts only for this short
        transaction, and a sender that dies mid-call frees its rows when the lease ends.
        The rows of one claim share its token, so that they can be settled together.
        `lease` (at least CLAIM_LEASE) is for a sender with calls queued ahead of these.
        """
        until = timezone.now() + max(
            lease or PeerNotification.CLAIM_LEASE, PeerNotification.CLAIM_LEASE
        )
        token = uuid.uuid4()
        # No savepoint when the caller's transaction holds the claim (the sender settling
        # a batch claims the next in the same commit): a failure here fails it all anyway.
        with transaction.atomic(using=self.db, savepoint=False):
            rows = self.order_by("next_attempt_at", "id")
            if db_connections[self.db].features.has_select_for_update_skip_locked:
                rows = rows.select_for_update(skip_locked=True)
            # The rows themselves, not their ids then the rows: locked (or, on SQLite,
            # inside the write transaction), nobody can change them before the update.
            claimed = list(rows[:limit])
            if not claimed:
                return []
            PeerNotification.objects.filter(pk__in=[row.pk for row in claimed]).update(
                claimed_until=until, claim_token=token, attempts=models.F("attempts") + 1
            )
        for row in claimed:
            row.claimed_until, row.claim_token, row.attempts = until, token, row.attempts + 1
        return claimed


class PeerNotification(models.Model):
    """The outbox: telling the peer what this side did, until the peer has heard it.

    A row carries everything needed to sign and send it (the peer's address and ids and
    the key), because a "deleted" notification outlives its connection row.
    """

    # Retries wait 15 s, 30 s, 1 min, … up to an hour between attempts, never giving up
    # on a peer that is merely unreachable.
    BACKOFF_BASE = timedelta(seconds=15)
    BACKOFF_MAX = timedelta(hours=1)
    # How long a sender may hold a claimed row before another sender takes it over
    # (a sender that died mid-call must not strand its rows).
    CLAIM_LEASE = timedelta(minutes=2)

    connection = models.ForeignKey(
        Connection,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )
    connection_name = models.CharField(max_length=100)
    status = models.CharField(
        "status told to the peer", max_length=12, choices=RemoteStatus.choices
    )
    reason = models.CharField(max_length=255, blank=True)
    changed_at = models.DateTimeField(
        help_text="When this side changed; lets the peer ignore a late, older notification."
    )
    remote_url = NodeURLField("remote instance URL")
    remote_uid = models.UUIDField("remote node uid")
    remote_connection_id = models.CharField(max_length=64)
    # The key to sign with once the connection row may be gone. Never shown or logged;
    # encrypted in the database, and wiped as soon as the row is settled.
    signing_key = EncryptedTextField()
    state = models.CharField(
        max_length=12, choices=NotificationState.choices, default=NotificationState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = PeerNotificationQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="notification_due_idx")]

    def __str__(self) -> str:
        return f"{self.connection_name}: tell the peer {self.status}"

    def __repr__(self) -> str:
        return f"<PeerNotification {self.pk} {self.status} {self.state}>"

    @classmethod
    def for_connection(
        cls, connection: Connection, status: str, reason: str = ""
    ) -> PeerNotification:
        """Queue telling the peer of `connection` that this side is now `status`."""
        return cls.for_connections([connection], status, reason)[0]

    @classmethod
    def for_connections(
        cls, connections: list[Connection], status: str, reason: str = ""
    ) -> list[PeerNotification]:
        """`for_connection` for many at once (an admin's bulk action): one update and one
        bulk insert, whatever their number."""
        if not connections:
            return []
        with transaction.atomic():
            # Only the newest state matters to the peer: drop older unsent ones that no
            # sender holds right now (a held one may be mid-call; the peer's ordering
            # check takes care of it).
            now = timezone.now()
            cls.objects.filter(connection__in=connections).unclaimed(now).cancel(
                "Superseded by a newer change."
            )
            return cls.objects.bulk_create(
                cls(
                    connection=connection,
                    connection_name=connection.name,
                    status=status,
                    reason=reason[:255],
                    changed_at=now,
                    remote_url=connection.remote_url,
                    remote_uid=connection.remote_uid,
                    remote_connection_id=connection.remote_connection_id,
                    signing_key=connection.shared_secret,
                    next_attempt_at=now,
                    created_at=now,
                )
                for connection in connections
            )

    def backoff(self) -> timedelta:
        """The wait before the next attempt, doubling per failure, with a little jitter."""
        step = self.BACKOFF_BASE * (2 ** min(max(self.attempts - 1, 0), 12))
        step = min(step, self.BACKOFF_MAX)
        return step * random.uniform(0.9, 1.1)

    # Settling a row only counts while this sender still holds the claim: if its lease
    # ran out and another sender took the row over, the other sender settles it. A
    # settled row keeps its claim's token: it tells which claim settled it.

    def mark_delivered(self) -> bool:
        return self._settle(
            state=NotificationState.DELIVERED, delivered_at=timezone.now(), last_error=""
        )

    @classmethod
    def mark_all_delivered(cls, notifications: list[PeerNotification]) -> int:
        """`mark_delivered` for a sender's batch: one UPDATE per claim (a batch is one
        claim), instead of one UPDATE and one commit per row. Returns how many it settled."""
        values = {
            "state": NotificationState.DELIVERED,
            "delivered_at": timezone.now(),
            "last_error": "",
            "signing_key": "",
            "claimed_until": None,
        }
        by_claim: dict[uuid.UUID | None, list[PeerNotification]] = {}
        for notification in notifications:
            by_claim.setdefault(notification.claim_token, []).append(notification)
        settled = 0
        for token, rows in by_claim.items():
            ids = {row.pk for row in rows}
            mine = cls.objects.filter(pk__in=ids, claim_token=token)
            done = mine.filter(state=NotificationState.PENDING).update(**values)
            if done < len(rows):
                # Some leases ran out and another sender took those rows over (rare: a
                # batch that took minutes). The token tells the rows settled here.
                ids = set(
                    mine.filter(state=NotificationState.DELIVERED).values_list("pk", flat=True)
                )
            for row in rows:
                if row.pk in ids:
                    for name, value in values.items():
                        setattr(row, name, value)
            settled += done
        return settled

    def mark_failed(self, error: str) -> bool:
        """The peer answered in a way no retry can change (it no longer knows us)."""
        return self._settle(state=NotificationState.FAILED, last_error=error[:500])

    def mark_attempt_failed(self, error: str) -> bool:
        """Back to the queue, for another attempt after the backoff (by any sender)."""
        return self._update(
            last_error=error[:500],
            next_attempt_at=timezone.now() + self.backoff(),
            claimed_until=None,
            claim_token=None,
        )

    def _settle(self, **values) -> bool:
        return self._update(**values, signing_key="", claimed_until=None)

    def _update(self, **values) -> bool:
        rows = type(self).objects.filter(
            pk=self.pk, claim_token=self.claim_token, state=NotificationState.PENDING
        )
        done = rows.update(**values) == 1
        if done:
            for name, value in values.items():
                setattr(self, name, value)
        return done
