"""The sync queue, both ways: events this side sends, and events the other side sent."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from connections.models import Connection, RemoteStatus, Status
from sync.models.twins import Twin, TwinStatus


class EventState(models.TextChoices):
    QUEUED = "queued", "Queued"
    IN_PROGRESS = "in_progress", "In progress"
    SENT = "sent", "Sent, waiting for the result"  # the other side stored it (202)
    APPLIED = "applied", "Applied"
    SUPERSEDED = "superseded", "Superseded"
    FAILED = "failed", "Failed"


FINAL_STATES = (EventState.APPLIED, EventState.SUPERSEDED, EventState.FAILED)
UNSENT_STATES = (EventState.QUEUED, EventState.IN_PROGRESS)


class EventAction(models.TextChoices):
    UPDATE = "update", "Update"  # the full current replica
    UNEXALATE = "unexalate", "Unexalate"  # both sides close the twin


class SyncEventQuerySet(models.QuerySet):
    def unsent(self):
        return self.filter(state__in=UNSENT_STATES)

    def sendable(self, now: datetime | None = None):
        """Events a sender may take now, at most one per twin: the oldest unsent one.

        A held or failing event keeps the later events of its twin waiting, never those
        of other twins. Events of a connection that is not active here, or that the peer
        said it deactivated, stay queued until it is active again.
        """
        now = now or timezone.now()
        earlier = SyncEvent.objects.filter(
            twin=OuterRef("twin"), seq__lt=OuterRef("seq"), state__in=UNSENT_STATES
        )
        return (
            self.filter(
                Q(state=EventState.QUEUED, next_try_at__lte=now)
                | Q(state=EventState.IN_PROGRESS, lease_until__lte=now)
            )
            .filter(
                connection__status=Status.ACTIVE,
                twin__status__in=(TwinStatus.OPEN, TwinStatus.CLOSED),
            )
            .exclude(connection__remote_status__in=(RemoteStatus.DEACTIVATED, RemoteStatus.DELETED))
            # An event for a peer that cannot be called waits in its feed for the pull.
            .filter(pull_cursor__isnull=True)
            .exclude(Exists(earlier))
        )


class SyncEvent(models.Model):
    """One state of a twin's request to send to the other side (the sender's queue)."""

    LEASE = timedelta(minutes=2)
    BACKOFF_BASE = timedelta(seconds=2)
    BACKOFF_MAX = timedelta(minutes=30)

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="sync_events")
    twin = models.ForeignKey(Twin, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    action = models.CharField(
        max_length=10, choices=EventAction.choices, default=EventAction.UPDATE
    )
    replica = models.JSONField(null=True, blank=True)
    # The replica queued before this one (the common ground the other side applies from:
    # it takes only what changed since, so a change it made meanwhile is not undone).
    previous = models.JSONField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=EventState.choices, default=EventState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_try_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # For a peer that cannot be called (private pull): the event's place in the
    # connection's feed, taken in the event's transaction. Such an event is never pushed.
    pull_cursor = models.PositiveBigIntegerField(null=True, blank=True, editable=False)

    objects = SyncEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["twin", "seq"], name="sync_event_seq_unique"),
            # Also the pull's index: a connection's events after a cursor, in order.
            models.UniqueConstraint(
                fields=["connection", "pull_cursor"],
                condition=Q(pull_cursor__isnull=False),
                name="sync_event_pull_cursor_unique",
            ),
        ]
        indexes = [
            # The sender's claim: unsent events by when they are due.
            models.Index(
                fields=["next_try_at", "id"],
                condition=Q(state__in=["queued", "in_progress"]),
                name="sync_event_unsent_idx",
            ),
            models.Index(fields=["connection", "state"], name="sync_event_conn_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} #{self.seq} of {self.twin}: {self.state}"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def backoff(self) -> timedelta:
        step = self.BACKOFF_BASE * (2 ** min(max(self.attempts - 1, 0), 12))
        return min(step, self.BACKOFF_MAX) * random.uniform(0.9, 1.1)

    def wire_body(self) -> dict:
        """The body of `POST …/sync/` for this event (protocol 1)."""
        return {
            "protocol": 1,
            "event": str(self.uuid),
            "twin": str(self.twin.local_request_id or ""),
            "twin_id": str(self.twin.twin_id),
            "seq": self.seq,
            "action": self.action,
            "replica": self.replica,
            "previous": self.previous,
        }


class InboundState(models.TextChoices):
    QUEUED = "queued", "Queued"
    APPLIED = "applied", "Applied"
    SUPERSEDED = "superseded", "Superseded"
    FAILED = "failed", "Failed"


class InboundEventQuerySet(models.QuerySet):
    def acks_due(self, now: datetime | None = None):
        now = now or timezone.now()
        return self.filter(ack_pending=True, ack_next_try_at__lte=now)


class InboundEvent(models.Model):
    """An event the other side sent, stored once per event uuid (its inbox).

    A repeat of the same body gets the same answer; another body under the same uuid is
    refused. The result goes back to the sender by `POST …/sync/ack/`.
    """

    ACK_BACKOFF_BASE = timedelta(seconds=2)
    ACK_BACKOFF_MAX = timedelta(minutes=10)

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="inbound_events"
    )
    uuid = models.UUIDField()
    twin = models.ForeignKey(Twin, on_delete=models.CASCADE, related_name="inbound_events")
    seq = models.PositiveIntegerField()
    action = models.CharField(
        max_length=10, choices=EventAction.choices, default=EventAction.UPDATE
    )
    sender_request_id = models.CharField(max_length=64, blank=True)
    replica = models.JSONField(null=True, blank=True)
    previous = models.JSONField(null=True, blank=True)
    body_digest = models.CharField(max_length=64)
    state = models.CharField(
        max_length=12, choices=InboundState.choices, default=InboundState.QUEUED
    )
    request_id = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_try_at = models.DateTimeField(default=timezone.now)
    ack_pending = models.BooleanField(default=False)
    ack_attempts = models.PositiveIntegerField(default=0)
    ack_next_try_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = InboundEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "uuid"], name="inbound_event_once"),
        ]
        indexes = [
            models.Index(
                fields=["twin", "seq"], condition=Q(state="queued"), name="inbound_queued_idx"
            ),
            models.Index(
                fields=["ack_next_try_at"], condition=Q(ack_pending=True), name="inbound_ack_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} #{self.seq} from the other side: {self.state}"

    @property
    def is_final(self) -> bool:
        return self.state != InboundState.QUEUED

    def answer(self) -> dict:
        """What the sender is told about this event (the 202 body and the ack)."""
        body: dict = {"event": str(self.uuid), "state": self.state}
        if self.request_id:
            body["request_id"] = self.request_id
        if self.error:
            body["error"] = self.error[:2000]
        return body

    def ack_backoff(self) -> timedelta:
        step = self.ACK_BACKOFF_BASE * (2 ** min(max(self.ack_attempts - 1, 0), 12))
        return min(step, self.ACK_BACKOFF_MAX) * random.uniform(0.9, 1.1)
