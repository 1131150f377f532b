"""The producer: a dirty twin's request read again and, if it changed, a sync event.

Webhooks and polls only mark twins dirty. One producer at a time holds a twin (a lease
taken with SKIP LOCKED), reads the request after taking it, so several changes make one
event carrying the full current replica; a replica equal to the last one queued (the
baseline) makes no event at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import OperationalError, transaction
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
from sync.models.rows import update_rows
from sync.services.errors import record_error, resolve_errors, twins_with_open_errors
from sync.services.feed import next_pull_cursors
from sync.services.gateway import (
    IDS_PER_CALL,
    BudgetWait,
    Gateway,
    GatewayError,
    Listed,
    NotConfigured,
    Purpose,
    RequestState,
    get_gateway,
    list_requests_by_id,
    read_request,
)
from sync.services.parallel import for_each
from sync.services.scripts import (
    ScriptFailed,
    note_maps_of,
    outgoing_replica,
    rules_for,
    rules_of,
)

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
    rules = rules_of(twins)
    troubled = twins_with_open_errors(twins)
    note_maps = note_maps_of(twins)
    listed = _list_together(twins, gateway)

    def one(twin: Twin) -> str | Produced:
        # A client per thread (one call at a time each); a test's gateway is shared.
        client = gateway or get_gateway(purpose_of(twin))
        return read_twin(
            twin,
            client,
            rules=rules,
            mapped=note_maps.get(twin.pk),
            listed=listed.get(twin.local_request_id),
        )

    read = []
    for outcome in for_each(one, twins):
        if isinstance(outcome, Produced):
            read.append(outcome)
        else:
            setattr(report, outcome, getattr(report, outcome) + 1)
    # The replicas are stored together: one transaction for the batch, not one each.
    for produced, event in zip(read, store_replicas(read), strict=True):
        if produced.twin.pk in troubled:
            resolve_errors(twin=produced.twin, place=ErrorPlace.PRODUCE)
        report.events += event is not None
        report.unchanged += event is None
    return report


# The twins purpose_of() gives to bulk, ordered after every other dirty twin.
BULK_LAST = Case(
    When(bulk_run__isnull=False, last_seq_sent=0, then=Value(1)),
    default=Value(0),
    output_field=IntegerField(),
).asc()


def _list_together(twins: list[Twin], gateway: Gateway | None) -> dict[int, Listed]:
    """The claimed twins' requests, listed with one call per hundred rather than read
    with one call each (then only their notes are read one by one). On the bulk share of
    the rate budget when every twin is a bulk exalate's first read.

    Only when the budget has room for the list and every twin's notes at once: on a
    tight budget, a list taken at every round while the notes wait their turn would spend
    the tokens the reads need, and the twins would never be read. Each twin then reads
    its request alone, as it does when the list fails (it meets the failure there)."""
    ids = [twin.local_request_id for twin in twins if twin.local_request_id is not None]
    if len(ids) < 2:
        return {}
    bulk = all(purpose_of(twin) == Purpose.BULK for twin in twins)
    try:
        client = gateway or get_gateway(Purpose.BULK if bulk else Purpose.OUTGOING)
        has_room = getattr(client, "has_room", None)
        if has_room is None or not has_room(-(-len(ids) // IDS_PER_CALL) + len(ids)):
            return {}
        return list_requests_by_id(client, ids)
    except (BudgetWait, GatewayError, NotConfigured):
        return {}


def purpose_of(twin: Twin) -> Purpose:
    """A twin a bulk exalate started is read the first time on bulk's share of the rate
    budget (at most half of it); every other read is an ordinary outgoing change."""
    if twin.bulk_run_id is not None and twin.last_seq_sent == 0:
        return Purpose.BULK
    return Purpose.OUTGOING


@dataclass
class Produced:
    """A claimed twin's request as read, and its replica: what `store_replicas` stores."""

    twin: Twin
    replica: dict
    seen_dirty_count: int | None
    source: RequestState | None = None


def produce_twin(
    twin: Twin, gateway: Gateway, *, rules: dict | None = None, troubled: bool = True
) -> str:
    """One claimed twin: "events" (an event was queued), "unchanged" or "failed".
    `troubled`: the twin may have open errors to resolve once this works."""
    produced = read_twin(twin, gateway, rules=rules)
    if not isinstance(produced, Produced):
        return produced
    made = queue_replica(
        twin, produced.replica, seen_dirty_count=produced.seen_dirty_count, source=produced.source
    )
    if troubled:
        resolve_errors(twin=twin, place=ErrorPlace.PRODUCE)
    return "events" if made else "unchanged"


def read_twin(
    twin: Twin,
    gateway: Gateway,
    *,
    rules: dict | None = None,
    mapped: dict | None = None,
    listed: Listed | None = None,
) -> Produced | str:
    """A claimed twin's request read and turned into its replica (not stored yet); or
    "waiting" or "failed" (recorded, the twin released). `mapped`: its note map;
    `listed`: its request as listed for the batch (only the notes are read then)."""
    seen = twin.dirty_count
    connection = twin.connection
    try:
        state = read_request(gateway, twin.local_request_id, listed=listed)
        replica = outgoing_replica(rules_for(connection, rules), twin, state, mapped)
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
    return Produced(twin, replica, seen, state)


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
    (event,) = store_replicas([Produced(twin, replica, seen_dirty_count, source)])
    return event


def store_replicas(batch: list[Produced]) -> list[SyncEvent | None]:
    """`queue_replica` for a batch of claimed twins (each at most once), in one
    transaction and a few statements: the twins are locked together (in the order of
    their ids, as every batch locks them), their events stored and their new state
    written. Returns each one's event, or None when its replica equals the baseline.
    A deadlock with another transaction locking twins in another order sends the batch
    one twin at a time instead."""
    if not batch:
        return []
    try:
        with transaction.atomic():
            return _store_together(batch)
    except OperationalError as exc:
        if len(batch) == 1 or getattr(exc.__cause__, "sqlstate", None) != DEADLOCK:
            raise
        logger.info("A batch of replicas met a deadlock; storing them one by one")
        return [event for one in batch for event in store_replicas([one])]


DEADLOCK = "40P01"  # PostgreSQL's deadlock_detected


def _store_together(batch: list[Produced]) -> list[SyncEvent | None]:
    pks = [produced.twin.pk for produced in batch]
    locked = {
        twin.pk: twin for twin in Twin.objects.select_for_update().filter(pk__in=pks).order_by("pk")
    }
    now = timezone.now()
    events: list[SyncEvent | None] = []
    again: list[int] = []  # twins with an earlier event that may still be unsent
    for produced in batch:
        twin = locked[produced.twin.pk]
        event = None
        if twin.status == TwinStatus.OPEN and produced.replica != twin.baseline:
            twin.last_seq_sent += 1
            if twin.last_seq_sent > 1:  # a twin's first event has none before it
                again.append(twin.pk)
            event = SyncEvent(
                connection_id=twin.connection_id,
                twin=twin,
                seq=twin.last_seq_sent,
                replica=produced.replica,
                previous=twin.baseline,
            )
            twin.baseline = produced.replica
        events.append(event)
        _release_produced(twin, produced)
    if again:
        # Only the newest state matters: unsent older ones go (each carries it all).
        SyncEvent.objects.filter(twin_id__in=again, state=EventState.QUEUED).update(
            state=EventState.SUPERSEDED,
            finished_at=now,
            last_error="A newer state of the request was queued.",
        )
    new = [event for event in events if event is not None]
    if new:
        _number_for_pull(new, {p.twin.pk: p.twin.connection for p in batch})
        SyncEvent.objects.bulk_create(new)
        wake_workers()
    for twin in locked.values():
        twin.attempts, twin.next_try_at, twin.lease_until, twin.lease_token = 0, None, None, None
    update_rows([locked[pk] for pk in sorted(pks)], PRODUCED_FIELDS)
    return events


PRODUCED_FIELDS = [
    "baseline",
    "last_seq_sent",
    "dirty",
    "dirty_at",
    "source_updated_at",
    "source_read_at",
    "written_digest",
    "attempts",
    "next_try_at",
    "lease_until",
    "lease_token",
]


def _release_produced(twin: Twin, produced: Produced) -> None:
    """The locked twin's new state (written by the caller): dirty still when it was marked
    again while its request was being read; read as of `produced.source`."""
    seen = produced.seen_dirty_count
    still_dirty = seen is not None and twin.dirty_count != seen
    twin.dirty = still_dirty
    twin.dirty_at = twin.dirty_at if still_dirty else None
    if produced.source is not None:
        # Read again: a later webhook showing the content of this side's last write
        # must be read back too (the request may have been changed back to it).
        twin.source_updated_at = produced.source.updated_at
        twin.source_read_at = produced.source.read_at
        twin.written_digest = ""


def _number_for_pull(events: list[SyncEvent], connections: dict) -> None:
    """Each event's place in its connection's pull feed (a peer that pulls), in order."""
    by_connection: dict = {}
    for event in events:
        by_connection.setdefault(event.connection_id, []).append(event)
    for group in by_connection.values():
        connection = connections[group[0].twin_id]
        # No cursors when the peer is called (it has no feed): the events keep none.
        for event, cursor in zip(group, next_pull_cursors(connection, len(group)), strict=False):
            event.pull_cursor = cursor


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
