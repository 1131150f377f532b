"""Private pull (DESIGN.md §11 step 5): a side in a private network cannot be called, so it
pulls the events waiting for it. The public side numbers them in a feed per connection;
the private side remembers how far it has stored them."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from connections.models import Connection


class PullFeed(models.Model):
    """The public side's counter of the events waiting for a peer that pulls.

    Its row is locked while an event takes the next cursor, in the event's own
    transaction: a cursor can never commit after a higher one, so a private side that has
    stored every event up to N never misses one below N.
    """

    connection = models.OneToOneField(
        Connection, on_delete=models.CASCADE, primary_key=True, related_name="pull_feed"
    )
    last_cursor = models.PositiveBigIntegerField(default=0)
    # Events at or below this cursor are no longer served (delivered and finished more
    # than the retention ago): a pull from an older cursor gets 410 cursor_expired.
    expired_through = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"pull feed of {self.connection_id}: {self.last_cursor}"


class PullPosition(models.Model):
    """The private side's place in the other side's feed: every event up to `after` is
    stored in this side's inbox (it goes up in the same transaction)."""

    connection = models.OneToOneField(
        Connection, on_delete=models.CASCADE, primary_key=True, related_name="pull_position"
    )
    after = models.PositiveBigIntegerField(default=0)
    next_pull_at = models.DateTimeField(default=timezone.now)
    pulled_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"pulled {self.connection_id} through {self.after}"
