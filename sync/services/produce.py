"""The producer: a dirty twin's request read again and, if it changed, a sync event.

Webhooks and polls only mark twins dirty. One producer at a time holds a twin (a lease
taken with SKIP LOCKED), reads the request after taking it, so several changes make one
event carrying the full current replica; a replica equal to the last one queued (the
baseline) makes no event at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone

from nodes.wakeup import wake_workers
from sync.models import (
    BulkExalate,
    ErrorKind,
    ErrorPlace,
    EventState,
    PollState,
    SyncEvent,
    Twin,
    TwinStatus,
)
from sync.models.claims import claim
from sync.services.errors import record_error, resolve_errors, twins_with_open_errors
from sync.services.feed import next_pull_cursor
from sync.services.gateway import (
    BudgetWait,
    Gateway,
    GatewayError,
    Purpose,
    RequestState,
    get_gateway,
    read_request,
)
from sync.services.parallel import for_each
from sync.services.scripts import ScriptFailed, outgoing_replica, rules_for

logger = logging.getLogger(__name__)


@dataclass
class ProduceReport:
    events: int = 0
    unchanged: int = 0
    failed: int = 0
    # Put back until the rate budget has room for them (bulk's share spent): not work done.
    waiting: int = 0

    @property
    def attempted(self) -> int:
        return self.events + self.unchanged + self.failed


def produce_changes(
    *, limit: int = 20, gateway: Gateway | None = None, connection=None
) -> ProduceReport:
    """Take up to `limit` dirty twins (of one connection, or all) and turn each one's
    request into an event if it changed. Ordinary changes are taken before the first
    reads of a bulk exalate's twins, which wait for bulk's share of the rate budget."""
    report = ProduceReport()
    due = Twin.objects.due_for_producing().select_related("connection")
    if connection is not None:
        due = due.filter(connection=connection)
    twins = claim(
        due,
        limit,
        Twin.LEASE,
        order_by=(BULK_LAST, "dirty_at", "id"),
        related=("connection",),
    )
    if not twins:
        return report
    rules: dict = {}
    troubled = twins_with_open_errors(twins)

    def one(twin: Twin) -> str:
        # A client per thread (one call at a time each); a test's gateway is shared.
        client = gateway or get_gateway(purpose_of(twin))
        return produce_twin(twin, client, rules=rules, troubled=twin.pk in troubled)

    for outcome in for_each(one, twins):
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


# The twins purpose_of() gives to bulk, ordered after every other dirty twin.
BULK_LAST = Case(
    When(bulk_run__isnull=False, last_seq_sent=0, then=Value(1)),
    default=Value(0),
    output_field=IntegerField(),
).asc()


def purpose_of(twin: Twin) -> Purpose:
    """A twin a bulk exalate started is read the first time on bulk's share of the rate
    budget (at most half of it); every other read is an ordinary outgoing change."""
    if twin.bulk_run_id is not None and twin.last_seq_sent == 0:
        return Purpose.BULK
    return Purpose.OUTGOING


def produce_twin(
    twin: Twin, gateway: Gateway, *, rules: dict | None = None, troubled: bool = True
) -> str:
    """One claimed twin: "events" (an event was queued), "unchanged" or "failed".
    `troubled`: the twin may have open errors to resolve once this works."""
    seen = twin.dirty_count
    connection = twin.connection
    try:
        state = read_request(gateway, twin.local_request_id)
        replica = outgoing_replica(rules_for(connection, rules), twin, state)
    except BudgetWait as wait:
        _wait_for_budget(twin, wait)
        return "waiting"
    except GatewayError as exc:
        _failed_to_read(twin, exc)
        return "failed"
    except ScriptFailed as exc:
        _release(twin)
        record_error(
            connection=connection,
            twin=twin,
            place=ErrorPlace.PRODUCE,
            kind=ErrorKind.SCRIPT,
            message=str(exc.problem),
            line=exc.problem.line,
            source_line=exc.problem.source_line,
            blocking=True,
        )
        return "failed"
    made = queue_replica(twin, replica, seen_dirty_count=seen, source=state)
    if troubled:
        resolve_errors(twin=twin, place=ErrorPlace.PRODUCE)
    return "events" if made else "unchanged"


def queue_replica(
    twin: Twin,
    replica: dict,
    *,
    seen_dirty_count: int | None,
    source: RequestState | None = None,
) -> SyncEvent | None:
    """Store an event for `replica` unless it equals the baseline, in the same
    transaction as the twin's new state; release the twin. The twin stays dirty when it
    was marked again while its request was being read."""
    with transaction.atomic():
        locked = Twin.objects.select_for_update().get(pk=twin.pk)
        event = None
        if locked.status == TwinStatus.OPEN and replica != locked.baseline:
            locked.last_seq_sent += 1
            if locked.last_seq_sent > 1:  # a twin's first event has none before it
                # Only the newest state matters: unsent older ones go (each carries it all).
                locked.events.filter(state=EventState.QUEUED).update(
                    state=EventState.SUPERSEDED,
                    finished_at=timezone.now(),
                    last_error="A newer state of the request was queued.",
                )
            event = SyncEvent.objects.create(
                connection_id=locked.connection_id,
                twin=locked,
                seq=locked.last_seq_sent,
                replica=replica,
                previous=locked.baseline,
                pull_cursor=next_pull_cursor(twin.connection),
            )
            locked.baseline = replica
            wake_workers()
        still_dirty = seen_dirty_count is not None and locked.dirty_count != seen_dirty_count
        seen = {}
        if source is not None:
            # Read again: a later webhook showing the content of this side's last write
            # must be read back too (the request may have been changed back to it).
            seen = {
                "source_updated_at": source.updated_at,
                "source_read_at": source.read_at,
                "written_digest": "",
            }
        Twin.objects.filter(pk=locked.pk).update(
            baseline=locked.baseline,
            last_seq_sent=locked.last_seq_sent,
            dirty=still_dirty,
            dirty_at=locked.dirty_at if still_dirty else None,
            **seen,
            attempts=0,
            next_try_at=None,
            lease_until=None,
            lease_token=None,
        )
    return event


def _failed_to_read(twin: Twin, exc: GatewayError) -> None:
    if exc.kind == "not_found":
        _release(twin)
        record_error(
            connection=twin.connection,
            twin=twin,
            place=ErrorPlace.PRODUCE,
            kind=ErrorKind.XURRENT,
            message=f"Request #{twin.local_request_id} is gone from Xurrent: {exc.message}",
            blocking=True,
        )
        return
    attempts = twin.attempts + 1
    twin.attempts = attempts
    wait = twin.backoff()
    next_try = timezone.now() + wait
    if exc.retry_at is not None:
        next_try = max(next_try, exc.retry_at)
        if exc.kind == "rate_limited":
            PollState.pause_account(exc.retry_at)
    Twin.objects.filter(pk=twin.pk, lease_token=twin.lease_token).update(
        attempts=F("attempts") + 1, next_try_at=next_try, lease_until=None, lease_token=None
    )
    record_error(
        connection=twin.connection,
        twin=twin,
        place=ErrorPlace.PRODUCE,
        kind=ErrorKind.NETWORK if exc.kind == "unreachable" else ErrorKind.XURRENT,
        message=f"Reading request #{twin.local_request_id} failed: {exc.message}",
        blocking=not exc.retryable,
        next_try_at=None if not exc.retryable else next_try,
    )


def _wait_for_budget(twin: Twin, wait: BudgetWait) -> None:
    """No token of its share now: the twin goes back, untouched, until the budget should
    have one (not an error: nothing failed), and its bulk run says it waits."""
    Twin.objects.filter(pk=twin.pk, lease_token=twin.lease_token).update(
        next_try_at=wait.retry_at, lease_until=None, lease_token=None
    )
    if twin.bulk_run_id is not None:
        BulkExalate.objects.filter(pk=twin.bulk_run_id).update(budget_wait_until=wait.retry_at)


def _release(twin: Twin) -> None:
    Twin.objects.filter(pk=twin.pk, lease_token=twin.lease_token).update(
        lease_until=None, lease_token=None
    )
