"""Sync rules: the saved versions of a connection's scripts (this side only)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from connections.models import Connection


class SyncRuleVersion(models.Model):
    """One saved version of a connection's sync rules (this side only, Script mode)."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="rule_versions"
    )
    number = models.PositiveIntegerField()
    outgoing = models.TextField(blank=True)
    incoming = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=200, blank=True)
    # The words an admin gave AI Assist when this version started as its draft.
    assist_prompt = models.TextField("AI Assist prompt", blank=True)

    class Meta:
        ordering = ["connection", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "number"], name="rule_version_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection} rules v{self.number}"
