"""What is synced: triggers (the scope), twins (a request and its counterpart), note maps,
the poll watermark and bulk exalate runs."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from connections.models import Connection


class Trigger(models.Model):
    """A Xurrent filter query: a request matching an active one is synced when it changes."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="triggers")
    query = models.CharField(
        max_length=1000,
        help_text="In the filter syntax of Xurrent's request list, e.g. category=incident&team=12.",
    )
    active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["connection", "id"]

    def __str__(self) -> str:
        state = "" if self.active else " (off)"
        return f"{self.query}{state}"


class TwinStatus(models.TextChoices):
    CREATING = "creating", "Creating"  # receiver side: stored before its request exists
    OPEN = "open", "Open"
    BLOCKED = "blocked", "Blocked"  # an error holds it until Retry or Resolve
    CLOSED = "closed", "Closed"  # unexalated


class TwinOrigin(models.TextChoices):
    LOCAL = "local", "This side"
    REMOTE = "remote", "The other side"


# The statuses in which a twin holds its request (at most one such twin per request).
HOLDING = (TwinStatus.CREATING, TwinStatus.OPEN, TwinStatus.BLOCKED)


class TwinQuerySet(models.QuerySet):
    def holding(self):
        """Twins that are not closed: each holds its request on its connection."""
        return self.filter(status__in=HOLDING)

    def unleased(self, now: datetime | None = None):
        now = now or timezone.now()
        return self.filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))

    def due_for_producing(self, now: datetime | None = None):
        """Dirty open twins nobody is working on whose next try has come."""
        now = now or timezone.now()
        return (
            self.unleased(now)
            .filter(dirty=True, status=TwinStatus.OPEN, local_request_id__isnull=False)
            # A deactivated connection keeps its changes queued; others make none.
            .filter(connection__status__in=("active", "deactivated"))
            .filter(Q(next_try_at__isnull=True) | Q(next_try_at__lte=now))
        )

    def mark_dirty(self) -> int:
        """Say these twins' requests changed; a producer will read them. A twin keeps its
        place in the line (when it first became dirty) however often it is marked."""
        return self.update(
            dirty=True,
            dirty_at=Coalesce(F("dirty_at"), Value(timezone.now())),
            dirty_count=F("dirty_count") + 1,
            next_try_at=None,
        )


class Twin(models.Model):
    """A synced request and its counterpart on the other side of one connection.

    `twin_id` is minted where the twin starts and travels in every event; both sides
    store it. Each side keeps its own sequence numbers: `last_seq_sent` for the events it
    sends, `last_seq_applied` for the other side's events it applied.
    """

    LEASE = timedelta(minutes=2)
    BACKOFF_BASE = timedelta(seconds=5)
    BACKOFF_MAX = timedelta(minutes=30)

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="twins")
    twin_id = models.UUIDField(default=uuid.uuid4)
    status = models.CharField(max_length=10, choices=TwinStatus.choices, default=TwinStatus.OPEN)
    origin = models.CharField(max_length=10, choices=TwinOrigin.choices)
    local_request_id = models.BigIntegerField(null=True, blank=True)
    remote_request_id = models.CharField(max_length=64, blank=True)
    # The last replica queued for the other side (what a change is compared with) and the
    # last one received from it (what incoming scripts get as `previous`).
    baseline = models.JSONField(null=True, blank=True)
    received = models.JSONField(null=True, blank=True)
    last_seq_sent = models.PositiveIntegerField(default=0)
    last_seq_applied = models.PositiveIntegerField(default=0)
    # Set by webhooks and polls; a producer reads the request and clears it, unless the
    # count moved meanwhile (another change came in while it was reading).
    dirty = models.BooleanField(default=False)
    dirty_at = models.DateTimeField(null=True, blank=True)
    dirty_count = models.PositiveIntegerField(default=0)
    # The request's `updated_at` when the engine last read it (or wrote it), and Xurrent's
    # clock then: a poll that lists it again with the same `updated_at`, read in a later
    # second, has nothing new to say (Xurrent's times have whole seconds).
    source_updated_at = models.DateTimeField(null=True, blank=True)
    source_read_at = models.DateTimeField(null=True, blank=True)
    # The digest of the request as Xurrent answered this side's last write to it
    # (xurrent.services.request_digest), until the request is read again: a webhook or a
    # poll that shows exactly that content reports this very write, and is not read back.
    written_digest = models.CharField(max_length=64, blank=True, default="")
    next_try_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # One worker at a time produces or applies for a twin.
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    conflicts = models.JSONField(default=list, blank=True)
    # Set before the receiver first asks Xurrent to create the request: from then on a
    # retry looks the request up by its sourceID before creating it again.
    create_tried = models.BooleanField(default=False)
    # The bulk exalate that started it: until its first state is queued, reading it draws
    # on bulk's share of the rate budget (later changes are ordinary outgoing ones).
    bulk_run = models.ForeignKey(
        "BulkExalate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(default=timezone.now)
    synced_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = TwinQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "twin_id"], name="twin_id_unique"),
            models.UniqueConstraint(
                fields=["connection", "local_request_id"],
                condition=Q(status__in=HOLDING) & Q(local_request_id__isnull=False),
                name="one_holding_twin_per_request",
            ),
        ]
        indexes = [
            models.Index(fields=["next_try_at"], condition=Q(dirty=True), name="twin_dirty_idx"),
            models.Index(fields=["connection", "local_request_id"], name="twin_local_idx"),
            models.Index(fields=["local_request_id"], name="twin_request_idx"),
        ]

    def __str__(self) -> str:
        local = self.local_request_id or "…"
        remote = self.remote_request_id or "…"
        return f"#{local} ↔ {remote}"

    @property
    def is_holding(self) -> bool:
        return self.status in HOLDING

    def backoff(self) -> timedelta:
        step = self.BACKOFF_BASE * (2 ** min(max(self.attempts - 1, 0), 12))
        return min(step, self.BACKOFF_MAX) * random.uniform(0.9, 1.1)

    def has_seen(self, updated_at: datetime | None) -> bool:
        """Whether the engine has read this request since the change that `updated_at`
        (as a poll lists it) stands for."""
        if updated_at is None or self.source_updated_at is None or self.source_read_at is None:
            return False
        if updated_at > self.source_updated_at:
            return False
        # Read in a later second than the change: every change of that second was in it.
        return self.source_read_at >= updated_at + timedelta(seconds=1)

    def add_conflict(self, fields: list[str], kept: str) -> None:
        """Remember that both sides changed `fields` at once and whose value was kept."""
        entry = {"at": timezone.now().isoformat(), "fields": fields, "kept": kept}
        self.conflicts = [*self.conflicts[-19:], entry]


class NoteOrigin(models.TextChoices):
    LOCAL = "local", "Written on this side"
    REMOTE = "remote", "Copied from the other side"


class NoteMap(models.Model):
    """One note of a twin and its copy on the other side: a mapped note is never added
    again. A row for a copy is stored before the copy is written (local id empty), so a
    write whose answer was lost is found by reading the notes back, not written twice."""

    twin = models.ForeignKey(Twin, on_delete=models.CASCADE, related_name="note_maps")
    local_note_id = models.BigIntegerField(null=True, blank=True)
    remote_note_id = models.CharField(max_length=64)
    origin = models.CharField(max_length=10, choices=NoteOrigin.choices)
    internal = models.BooleanField(default=False)
    text_digest = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["twin", "id"]
        constraints = [
            models.UniqueConstraint(fields=["twin", "remote_note_id"], name="note_map_remote"),
            models.UniqueConstraint(
                fields=["twin", "local_note_id"],
                condition=Q(local_note_id__isnull=False),
                name="note_map_local",
            ),
        ]

    def __str__(self) -> str:
        return f"note {self.local_note_id or '…'} ↔ {self.remote_note_id}"


class PollState(models.Model):
    """Where the poll of this node's Xurrent account got to, in Xurrent's clock."""

    ACCOUNT = "account"

    key = models.CharField(max_length=100, unique=True)
    watermark = models.DateTimeField(null=True, blank=True)
    polled_at = models.DateTimeField(null=True, blank=True)
    # A webhook named a request no twin holds: look for trigger matches at once.
    requested = models.BooleanField(default=False)
    # Xurrent said to wait (429 and its Retry-After): every worker leaves the account
    # alone until then.
    paused_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.watermark}"

    @classmethod
    def account(cls) -> PollState:
        state, _ = cls.objects.get_or_create(key=cls.ACCOUNT)
        return state

    @classmethod
    def pause_account(cls, until: datetime) -> None:
        """Xurrent asked every caller of this account to wait until `until`."""
        with transaction.atomic():
            cls.objects.get_or_create(key=cls.ACCOUNT)
            cls.objects.filter(key=cls.ACCOUNT).filter(
                Q(paused_until__isnull=True) | Q(paused_until__lt=until)
            ).update(paused_until=until)

    @classmethod
    def account_paused(cls, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return cls.objects.filter(key=cls.ACCOUNT, paused_until__gt=now).exists()

    @classmethod
    def request_soon(cls) -> None:
        with transaction.atomic():
            cls.objects.get_or_create(key=cls.ACCOUNT)
            cls.objects.filter(key=cls.ACCOUNT).update(requested=True)


class BulkState(models.TextChoices):
    WAITING = "waiting", "Waiting for the worker"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class BulkExalate(models.Model):
    """One press of Bulk exalate: every current match of the connection's triggers."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="bulk_exalates"
    )
    state = models.CharField(max_length=10, choices=BulkState.choices, default=BulkState.RUNNING)
    found = models.PositiveIntegerField(default=0)
    exalated = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(
        default=0, help_text="Already synced, or copies made by this connection."
    )
    message = models.CharField(max_length=500, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Started from the Sync tab: the worker goes through the matches (the command does it
    # itself). The lease keeps two workers from going through the same run.
    in_worker = models.BooleanField(default=False, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    # Bulk exalate takes at most half of the account's rate budget: when its share is
    # spent, its requests wait until then, and the tab says so.
    budget_wait_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection"],
                condition=Q(state__in=["waiting", "running"]),
                name="one_running_bulk_exalate",
            )
        ]

    def __str__(self) -> str:
        return f"bulk exalate {self.started_at:%Y-%m-%d %H:%M}: {self.state}"

    def wait_for_budget(self, until: datetime) -> None:
        """Its requests wait for the rate budget until `until` (shown on the tab)."""
        BulkExalate.objects.filter(pk=self.pk).update(budget_wait_until=until)
        self.budget_wait_until = until

    @property
    def waiting_for_budget(self) -> bool:
        return self.budget_wait_until is not None and self.budget_wait_until > timezone.now()
