"""What Xurrent told this node through its webhooks, kept as hints for the sync engine."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class WebhookHintQuerySet(models.QuerySet):
    def pending(self) -> WebhookHintQuerySet:
        """Hints not yet taken up, oldest first."""
        return self.filter(processed=False).order_by("received_at", "id")


class WebhookHint(models.Model):
    """One webhook call: only which object changed and how, never its content.

    The body of a webhook is not trusted (unsigned ones can come from anybody who knows
    the address): the sync engine reads the object back through the API before acting.
    """

    received_at = models.DateTimeField(default=timezone.now)
    event = models.CharField(max_length=100)
    object_id = models.BigIntegerField(null=True, blank=True)
    account = models.CharField(max_length=100)
    processed = models.BooleanField(default=False)
    # The digest of the request the webhook carried (its payload) for a create or an
    # update, else empty: it only tells the engine's own writes apart, never what to sync.
    digest = models.CharField(max_length=64, blank=True, default="")

    objects = WebhookHintQuerySet.as_manager()

    class Meta:
        verbose_name = "webhook hint"
        indexes = [
            # The consumer reads the unprocessed hints in arrival order; processed ones
            # pile up until housekeeping and must not slow that down.
            models.Index(
                fields=["received_at", "id"],
                condition=models.Q(processed=False),
                name="xurrent_hint_pending",
            ),
        ]

    def __str__(self) -> str:
        target = f" #{self.object_id}" if self.object_id is not None else ""
        return f"{self.event}{target}"
