"""Sync errors: where it happened, what kind, and whether it holds its twin."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from connections.models import Connection
from sync.models.twins import Twin


class ErrorLevel(models.TextChoices):
    REQUEST = "request", "Request"
    CONNECTION = "connection", "Connection"
    NODE = "node", "Node"


class ErrorKind(models.TextChoices):
    SCRIPT = "script", "Script"
    XURRENT = "xurrent", "Xurrent"
    PEER = "peer", "Remote node"
    NETWORK = "network", "Network"


class ErrorPlace(models.TextChoices):
    PRODUCE = "produce", "Reading the request (outgoing)"
    SEND = "send", "Sending to the other side"
    APPLY = "apply", "Applying on this side (incoming)"
    ACK = "ack", "Telling the other side the result"
    POLL = "poll", "Polling Xurrent"
    PULL = "pull", "Pulling from the other side"
    REMOTE = "remote", "On the other side"


# An error seen this many times holds its twin, whatever its kind.
BLOCK_AFTER = 10


class SyncErrorQuerySet(models.QuerySet):
    def unresolved(self):
        return self.filter(resolved_at__isnull=True)

    def blocking(self):
        return self.unresolved().filter(blocking=True)


class SyncError(models.Model):
    """Something that went wrong while syncing; nothing is dropped silently.

    One row per problem and place: a repeat of the same one counts `attempts` up instead
    of adding rows, and `next_try_at` says when it is tried again by itself (empty when it
    waits for someone: a blocking error waits for Retry or Resolve).
    """

    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.CASCADE, related_name="sync_errors"
    )
    twin = models.ForeignKey(
        Twin, null=True, blank=True, on_delete=models.CASCADE, related_name="errors"
    )
    event_uuid = models.UUIDField(null=True, blank=True)
    level = models.CharField(max_length=12, choices=ErrorLevel.choices)
    kind = models.CharField(max_length=10, choices=ErrorKind.choices)
    place = models.CharField(max_length=10, choices=ErrorPlace.choices)
    message = models.TextField()
    line = models.PositiveIntegerField(null=True, blank=True)
    source_line = models.CharField(max_length=200, blank=True)
    blocking = models.BooleanField(default=False)
    # Reported by the other side: shown here read-only, retried there.
    remote = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=1)
    next_try_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.CharField(max_length=200, blank=True)

    objects = SyncErrorQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        indexes = [
            models.Index(
                fields=["twin", "place"],
                condition=Q(resolved_at__isnull=True),
                name="sync_error_open_idx",
            ),
            models.Index(
                fields=["connection", "-last_seen_at"],
                condition=Q(resolved_at__isnull=True),
                name="sync_error_conn_open_idx",
            ),
        ]

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.get_kind_display()} error{where}: {self.message[:80]}"

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None
