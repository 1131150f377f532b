"""Ids of node tokens already used, so that a replayed token is refused everywhere."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class UsedTokenQuerySet(models.QuerySet):
    def expired(self):
        return self.filter(expires_at__lt=timezone.now())


class UsedToken(models.Model):
    """A node token's id, kept until the token could no longer pass the expiry check.

    In the database rather than the cache: the default cache lives in one process, and a
    replayed token sent to another worker or server must be refused all the same.
    """

    # SHA-256 of "issuer uid\njti": fixed length, and the raw jti never stored.
    digest = models.CharField(max_length=64, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)

    objects = UsedTokenQuerySet.as_manager()

    def __str__(self) -> str:
        return self.digest
