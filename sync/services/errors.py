"""Recording sync errors, and what people do about them: Retry and Resolve."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from connections.models import Connection
from nodes.wakeup import wake_workers
from sync.models import (
    BLOCK_AFTER,
    ErrorLevel,
    EventState,
    InboundEvent,
    InboundState,
    SyncError,
    Twin,
    TwinStatus,
)

logger = logging.getLogger(__name__)


def record_error(
    *,
    connection: Connection | None,
    place: str,
    kind: str,
    message: str,
    twin: Twin | None = None,
    event_uuid=None,
    line: int | None = None,
    source_line: str = "",
    blocking: bool = False,
    remote: bool = False,
    next_try_at: datetime | None = None,
) -> SyncError:
    """Record that something went wrong, or count one more time an error already open
    at the same place. A blocking error, or one seen BLOCK_AFTER times, holds its twin
    until Retry or Resolve."""
    now = timezone.now()
    level = ErrorLevel.NODE
    if twin is not None:
        level = ErrorLevel.REQUEST
    elif connection is not None:
        level = ErrorLevel.CONNECTION
    with transaction.atomic():
        error = (
            SyncError.objects.select_for_update()
            .unresolved()
            .filter(connection=connection, twin=twin, place=place, kind=kind, remote=remote)
            .first()
        )
        if error is None:
            error = SyncError(
                connection=connection, twin=twin, place=place, kind=kind, level=level, remote=remote
            )
            error.attempts = 1
        else:
            error.attempts += 1
        error.event_uuid = event_uuid or error.event_uuid
        error.message = message[:5000]
        error.line = line
        error.source_line = source_line[:200]
        error.last_seen_at = now
        # Errors of the other side are retried there; here they are only shown.
        holds = twin is not None and not remote
        error.blocking = holds and (blocking or error.blocking or error.attempts >= BLOCK_AFTER)
        error.next_try_at = None if error.blocking or remote else next_try_at
        error.save()
        if error.blocking and twin.status in (TwinStatus.OPEN, TwinStatus.CREATING):
            Twin.objects.filter(pk=twin.pk).update(status=TwinStatus.BLOCKED)
            twin.status = TwinStatus.BLOCKED
    logger.warning(
        "Sync error (%s, %s) on connection %s%s: %s",
        kind,
        place,
        connection.pk if connection else "-",
        f", twin {twin.pk}" if twin else "",
        message[:300],
    )
    return error


def twins_with_open_errors(twins) -> set[int]:
    """Of these twins, the ones with an error of this side open (one query for a batch:
    the others need no resolving when their work goes well)."""
    return set(
        SyncError.objects.unresolved()
        .filter(twin__in=[t.pk for t in twins], remote=False)
        .values_list("twin_id", flat=True)
    )


def resolve_errors(
    *, twin: Twin | None = None, connection=None, place=None, reason="", twin_level=True
) -> int:
    """The cause went away by itself (a retry worked): close the open errors there
    (`twin_level=False`: only the connection's own, not those of its twins)."""
    errors = SyncError.objects.unresolved().filter(remote=False)
    if twin is not None:
        errors = errors.filter(twin=twin)
    if connection is not None:
        errors = errors.filter(connection=connection)
    if not twin_level:
        errors = errors.filter(twin__isnull=True)
    if place is not None:
        errors = errors.filter(place=place)
    return errors.update(
        resolved_at=timezone.now(), resolution=(reason or "It worked on a later try.")[:200]
    )


def retry_twin(twin: Twin, user=None) -> Twin:
    """Retry: the cause is fixed. Unblock the twin and sync its newest state: the newest
    event received is applied (older ones superseded), and the request is read again so
    its newest state is sent (older unsent events superseded)."""
    now = timezone.now()
    with transaction.atomic():
        twin = Twin.objects.select_for_update().get(pk=twin.pk)
        if twin.status == TwinStatus.CLOSED:
            return twin
        twin.status = TwinStatus.OPEN if twin.local_request_id else TwinStatus.CREATING
        twin.attempts = 0
        twin.next_try_at = None
        twin.lease_until = None
        twin.lease_token = None
        twin.save(update_fields=["status", "attempts", "next_try_at", "lease_until", "lease_token"])
        _retry_inbound(twin, now)
        if twin.local_request_id is not None:
            Twin.objects.filter(pk=twin.pk).mark_dirty()
        twin.events.filter(state__in=(EventState.QUEUED, EventState.FAILED)).update(
            state=EventState.SUPERSEDED,
            finished_at=now,
            last_error="Superseded by Retry: the newest state is sent instead.",
        )
        SyncError.objects.unresolved().filter(twin=twin, remote=False).update(
            resolved_at=now, resolved_by=user, resolution="Retried."
        )
        wake_workers()
    return twin


def _retry_inbound(twin: Twin, now) -> None:
    """Queue the newest received event again (above the last one applied)."""
    newest = (
        twin.inbound_events.filter(
            state__in=(InboundState.QUEUED, InboundState.FAILED), seq__gt=twin.last_seq_applied
        )
        .order_by("-seq")
        .first()
    )
    if newest is None:
        return
    InboundEvent.objects.filter(pk=newest.pk).update(
        state=InboundState.QUEUED, next_try_at=now, error="", attempts=0
    )
    # The older ones (the failed one among them) are superseded, and the sender told so.
    twin.inbound_events.filter(
        state__in=(InboundState.QUEUED, InboundState.FAILED), seq__lt=newest.seq
    ).update(
        state=InboundState.SUPERSEDED,
        finished_at=now,
        ack_pending=True,
        ack_next_try_at=now,
    )


def resolve_error(error: SyncError, user=None, *, note: str = "") -> SyncError:
    """Resolve: someone dealt with it another way. The error is closed and its twin
    released; what failed stays failed and the next change syncs as usual."""
    with transaction.atomic():
        SyncError.objects.filter(pk=error.pk).update(
            resolved_at=timezone.now(), resolved_by=user, resolution=(note or "Resolved.")[:200]
        )
        if error.twin_id and not SyncError.objects.blocking().filter(twin=error.twin_id).exists():
            Twin.objects.filter(pk=error.twin_id, status=TwinStatus.BLOCKED).update(
                status=TwinStatus.OPEN, attempts=0, next_try_at=None
            )
            Twin.objects.filter(
                pk=error.twin_id, status=TwinStatus.OPEN, local_request_id__isnull=True
            ).update(status=TwinStatus.CREATING)
        wake_workers()
    error.refresh_from_db()
    return error
