"""What people do about a sync error, from the Sync tab or the operations view: Retry
and Resolve. Both keep to the engine's rules (`services.errors`); this only picks the
right one for the error at hand."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from nodes.wakeup import wake_workers
from sync.models import EventState, PollState, SyncError, SyncEvent, TwinStatus
from sync.services.errors import resolve_error, retry_twin


class NotHere(Exception):
    """The error is the other side's: it is retried or resolved there."""


class NothingToRetry(Exception):
    """The error's request is not synced any more (unexalated): Resolve closes it."""


def retry_error(error: SyncError, user=None) -> SyncError:
    """Retry: the cause is fixed, try again now.

    A request's error retries its twin (the newest state is synced, older events
    superseded). A connection's error (the other side refused every call) and a node's
    (polling Xurrent) are retried by themselves; Retry brings the next try forward.
    """
    if error.remote:
        raise NotHere("This error happened on the other side: it is retried there.")
    if error.is_resolved:
        return error
    if error.twin_id is not None:
        if error.twin.status == TwinStatus.CLOSED:
            raise NothingToRetry(
                "This request was unexalated since: there is nothing to retry. Resolve closes "
                "the error."
            )
        retry_twin(error.twin, user)
    elif error.connection_id is not None:
        _try_connection_now(error)
    else:
        _try_node_now(error)
    error.refresh_from_db()
    return error


def resolve(error: SyncError, user=None, *, note: str = "") -> SyncError:
    """Resolve: dealt with another way; the twin is released, what failed stays failed."""
    if error.remote:
        raise NotHere("This error happened on the other side: it is resolved there.")
    if error.is_resolved:
        return error
    return resolve_error(error, user, note=note)


def _try_connection_now(error: SyncError) -> None:
    now = timezone.now()
    with transaction.atomic():
        SyncEvent.objects.filter(connection_id=error.connection_id, state=EventState.QUEUED).update(
            next_try_at=now
        )
        SyncError.objects.filter(pk=error.pk).update(next_try_at=now)
        wake_workers()


def _try_node_now(error: SyncError) -> None:
    PollState.request_soon()
    SyncError.objects.filter(pk=error.pk).update(next_try_at=timezone.now())
