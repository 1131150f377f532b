"""Taking rows of a work queue so that no other worker takes them at the same time."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

# A lease covers the work on this many rows of one claim; a claim of more gets as many
# leases end to end (the rows of a claim are worked on a few at a time, one after another:
# each keeps the same time before another worker may take it over).
LEASE_COVERS = 20


def claim(
    rows: QuerySet,
    limit: int,
    lease: timedelta,
    *,
    order_by: tuple[str, ...],
    related: tuple[str, ...] = (),
    **changes,
) -> list:
    """Lease up to `limit` of `rows` to this worker and return them.

    On PostgreSQL the candidates are locked with SELECT … FOR UPDATE SKIP LOCKED, so
    workers on several servers each get different rows without waiting for each other;
    on SQLite (one worker) the write transaction keeps claims apart. The lock lasts only
    for this short transaction: the claim itself is a lease (`lease_until`, `lease_token`),
    so a worker that dies mid-work frees its rows when the lease ends (`lease` for each
    LEASE_COVERS rows claimed). `changes` are
    written together with the lease (e.g. a new state); `related` are loaded with the
    claimed rows (select_related).
    """
    model = rows.model
    token = uuid.uuid4()
    now = timezone.now()
    with transaction.atomic(using=rows.db):
        candidates = rows.order_by(*order_by)
        if connections[rows.db].features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        ids = list(candidates.values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        leases = -(-len(ids) // LEASE_COVERS)
        model.objects.filter(pk__in=ids).update(
            lease_until=now + lease * leases, lease_token=token, **changes
        )
    claimed = model.objects.filter(pk__in=ids, lease_token=token)
    if related:
        claimed = claimed.select_related(*related)
    return list(claimed.order_by(*order_by))
