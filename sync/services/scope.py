"""What is synced: triggers, exalating and unexalating requests, and noticing changes
(webhook hints, polls of `updated_at`, bulk exalate)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from django.db import IntegrityError, transaction
from django.utils import timezone

from connections.models import Connection, Status
from nodes.wakeup import wake_workers
from sync.models import (
    BulkExalate,
    BulkState,
    EventAction,
    EventState,
    PollState,
    SyncEvent,
    Trigger,
    Twin,
    TwinOrigin,
    TwinStatus,
)
from sync.services.feed import next_pull_cursor
from sync.services.gateway import (
    IDS_PER_CALL,
    BudgetWait,
    Gateway,
    GatewayError,
    Purpose,
    first_page,
    get_gateway,
    parse_time,
)
from xurrent.client import xurrent_time
from xurrent.services import request_digest

logger = logging.getLogger(__name__)

# Parameters of the request list that are not filters: a trigger cannot set them.
RESERVED_PARAMETERS = frozenset({"sort", "page", "per_page", "fields", "updated_at", "id"})
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,63}$")
# Polls ask again for this much before the watermark: Xurrent's timestamps have whole
# seconds, and a change can commit a little after the clock said it happened.
POLL_OVERLAP = timedelta(seconds=60)
_sleep = time.sleep  # a bulk exalate waiting for its share of the rate budget (tests: fake)
# A bulk exalate waits in naps of at most this (a Retry-After may be long): it keeps its
# lease (two minutes) between them, so no other worker takes the run meanwhile.
BULK_NAP = 30.0


class ScopeError(ValueError):
    """A trigger query, an exalate or an unexalate that cannot be done; says why."""


# --- triggers -----------------------------------------------------------------------------


def parse_query(query: str) -> dict[str, str]:
    """A trigger's filter query as the list call's parameters; ScopeError when it is not one.

    The query is in Xurrent's own filter syntax, as in the address of a request list:
    `category=incident&team=12`, `status=!completed`, `impact=high,top`.
    """
    text = query.strip().lstrip("?")
    if not text:
        raise ScopeError("Enter a filter, e.g. category=incident&team=12.")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise ScopeError(
            "The filter must be field=value pairs joined with &, e.g. category=incident&team=12."
        ) from None
    filters: dict[str, str] = {}
    for name, value in pairs:
        if not FIELD_NAME.match(name):
            raise ScopeError(f"{name!r} is not a request field name.")
        if name in RESERVED_PARAMETERS:
            raise ScopeError(
                f"{name!r} cannot be part of a trigger: the engine sets it itself when it "
                "looks for changes."
            )
        if name in filters:
            raise ScopeError(f"{name!r} is given twice; Xurrent joins filters with AND only.")
        filters[name] = value
    return filters


def add_trigger(connection: Connection, query: str, *, note: str = "", user=None) -> Trigger:
    filters = parse_query(query)
    canonical = "&".join(f"{k}={v}" for k, v in filters.items())
    return Trigger.objects.create(
        connection=connection, query=canonical, note=note.strip()[:200], created_by=user
    )


# --- exalate / unexalate -------------------------------------------------------------------


def held_by_the_other_side(connection: Connection, request_id: int) -> bool:
    """On a local connection both sides share one Xurrent account: a request the other
    side holds in a twin (its original or its copy) never starts a twin on this side."""
    return bool(held_by_the_other_side_of(connection, [request_id]))


def held_by_the_other_side_of(connection: Connection, request_ids: list[int]) -> set[int]:
    """`held_by_the_other_side` for many requests: one query, and none (whether the
    connection is local reads the General Settings) for a page of a connection that is not
    local."""
    if not request_ids or not connection.is_local:
        return set()
    return set(
        Twin.objects.holding()
        .filter(connection_id__in=_peer_ids(connection), local_request_id__in=request_ids)
        .values_list("local_request_id", flat=True)
    )


def _peer_ids(connection: Connection) -> list:
    peer = connection.local_peer()
    return [peer.pk] if peer is not None else []


def twin_named_by(connection: Connection, source_id: Any) -> Twin | None:
    """The twin of `connection` whose id a request carries as its sourceID: such a request
    is a copy this connection made, and never starts a twin of its own there."""
    try:
        twin_id = uuid.UUID(str(source_id))
    except (ValueError, TypeError, AttributeError):
        return None
    return Twin.objects.filter(connection=connection, twin_id=twin_id).first()


def exalate_request(connection: Connection, request_id: int, *, gateway: Gateway | None = None):
    """Start syncing one request on `connection` (or sync it again now if it already is).

    Raises ScopeError when the connection cannot sync, the request does not exist, or it
    is the copy of a twin of this connection.
    """
    if not connection.is_paired or connection.status not in (Status.ACTIVE, Status.DEACTIVATED):
        raise ScopeError(f"The connection is {connection.status_in_words}: it cannot sync yet.")
    gateway = gateway or get_gateway()
    try:
        request = gateway.get_request(request_id)
    except GatewayError as exc:
        if exc.kind == "not_found":
            raise ScopeError(f"Xurrent has no request #{request_id}.") from None
        raise ScopeError(f"Xurrent could not be asked about #{request_id}: {exc.message}") from None
    twin = Twin.objects.holding().filter(connection=connection, local_request_id=request_id).first()
    if twin is not None:
        Twin.objects.filter(pk=twin.pk).mark_dirty()
        wake_workers_now()
        return twin
    named = twin_named_by(connection, request.get("sourceID"))
    if named is None and held_by_the_other_side(connection, request_id):
        raise ScopeError(
            f"Request #{request_id} is synced by the other side of this local connection."
        )
    if named is not None:
        raise ScopeError(
            f"Request #{request_id} is the copy of request {named.remote_request_id or '…'} "
            "on the other side, made by this connection: it is synced already."
        )
    twin, _ = start_twin(connection, request_id)
    return twin


def start_twin(
    connection: Connection, request_id: int, *, bulk_run: BulkExalate | None = None
) -> tuple[Twin, bool]:
    """A new twin for a local request, dirty so a producer sends it; (twin, created).
    Another worker starting it at the same moment finds the one that won. `bulk_run`: the
    bulk exalate starting it (its first read draws on bulk's share of the rate budget)."""
    try:
        with transaction.atomic():
            twin = Twin.objects.create(
                connection=connection,
                origin=TwinOrigin.LOCAL,
                status=TwinStatus.OPEN,
                local_request_id=request_id,
                dirty=True,
                dirty_at=timezone.now(),
                dirty_count=1,
                bulk_run=bulk_run,
            )
            wake_workers()
    except IntegrityError:
        existing = Twin.objects.holding().get(connection=connection, local_request_id=request_id)
        return existing, False
    return twin, True


def _not_synced_yet(connection: Connection, requests: list[dict]) -> list[int]:
    """The ids of a page of requests that may start a twin: not a copy this connection
    made, not held by the other side of a local connection, not in a twin already (open,
    or unexalated: left out until exalated one by one). A few queries for the page."""
    copies = set()
    named = {_uuid_or_none(r.get("sourceID")) for r in requests} - {None}
    if named:
        copies = {
            str(twin_id)
            for twin_id in Twin.objects.filter(
                connection=connection, twin_id__in=named
            ).values_list("twin_id", flat=True)
        }
    ids = [int(r["id"]) for r in requests if str(_uuid_or_none(r.get("sourceID"))) not in copies]
    known = set(
        Twin.objects.filter(connection=connection, local_request_id__in=ids).values_list(
            "local_request_id", flat=True
        )
    )
    fresh = [i for i in ids if i not in known]
    held = held_by_the_other_side_of(connection, fresh)
    return [i for i in fresh if i not in held]


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def start_twins(
    connection: Connection, request_ids: list[int], *, bulk_run: BulkExalate | None = None
) -> int:
    """`start_twin` for many requests at once (a page of bulk exalate), in one statement;
    returns how many were started. A request another worker started meanwhile keeps the
    twin that one made."""
    if not request_ids:
        return 0
    now = timezone.now()
    holding = Twin.objects.holding().filter(connection=connection, local_request_id__in=request_ids)
    with transaction.atomic():
        before = holding.count()
        Twin.objects.bulk_create(
            [
                Twin(
                    connection=connection,
                    origin=TwinOrigin.LOCAL,
                    status=TwinStatus.OPEN,
                    local_request_id=request_id,
                    dirty=True,
                    dirty_at=now,
                    dirty_count=1,
                    bulk_run=bulk_run,
                )
                for request_id in request_ids
            ],
            ignore_conflicts=True,
        )
        started = holding.count() - before
        if started:
            wake_workers()
    return started


def wake_workers_now() -> None:
    with transaction.atomic():
        wake_workers()


def unexalate_request(connection: Connection, request_id: int) -> Twin:
    """Stop syncing a request: close its twin here and tell the other side, in order."""
    with transaction.atomic():
        twin = (
            Twin.objects.select_for_update()
            .holding()
            .filter(connection=connection, local_request_id=request_id)
            .first()
        )
        if twin is None:
            raise ScopeError(f"Request #{request_id} is not synced on this connection.")
        close_twin(twin, tell_peer=True)
    return twin


def close_twin(twin: Twin, *, tell_peer: bool) -> SyncEvent | None:
    """Close a (locked) twin; with `tell_peer`, queue an unexalate event after its others.

    Events not sent yet are superseded: the other side closes the twin anyway.
    """
    twin.events.filter(state=EventState.QUEUED).update(
        state=EventState.SUPERSEDED,
        finished_at=timezone.now(),
        last_error="The request was unexalated before this change was sent.",
    )
    twin.status = TwinStatus.CLOSED
    twin.closed_at = timezone.now()
    twin.dirty = False
    event = None
    if tell_peer:
        twin.last_seq_sent += 1
        event = SyncEvent.objects.create(
            connection=twin.connection,
            twin=twin,
            seq=twin.last_seq_sent,
            action=EventAction.UNEXALATE,
            pull_cursor=next_pull_cursor(twin.connection),
        )
        wake_workers()
    twin.save(update_fields=["status", "closed_at", "dirty", "last_seq_sent"])
    return event


# --- noticing changes ------------------------------------------------------------------------


def syncing_connections():
    """Connections whose changes are noticed: paired, active or deactivated (a deactivated
    one keeps its changes queued until it is active again)."""
    return Connection.objects.filter(
        status__in=(Status.ACTIVE, Status.DEACTIVATED), remote_uid__isnull=False
    ).exclude(remote_connection_id="")


def note_changed_requests(
    request_ids: Iterable[int],
    *,
    gateway: Gateway | None = None,
    updated: dict[int, datetime | None] | None = None,
    shown: dict[int, set[str]] | None = None,
) -> tuple[int, int]:
    """Requests that changed in Xurrent: mark their twins dirty, and start twins for the
    ones that match a trigger and no twin holds yet. Returns (marked, started).

    `updated` (a poll's `updated_at` of each request) leaves out the twins whose request
    the engine has read since that change: a poll overlaps the one before it, and must
    not make every twin it lists again read again. `shown` (per request, the digests of
    the contents the webhooks or the poll showed) leaves out the twins whose own last
    write left exactly that content: the change is their write, nothing to read back.
    """
    ids = sorted({int(i) for i in request_ids})
    if not ids:
        return 0, 0
    twins = Twin.objects.filter(
        status=TwinStatus.OPEN, local_request_id__in=ids, connection__in=syncing_connections()
    )
    if updated or shown:
        fields = ("pk", "local_request_id", "source_updated_at", "source_read_at")
        changed = [
            twin.pk
            for twin in twins.only(*fields, "written_digest")
            if not _known_already(twin, updated or {}, shown or {})
        ]
        twins = Twin.objects.filter(pk__in=changed)
    marked = twins.mark_dirty()
    started = 0
    for connection in syncing_connections():
        triggers = list(connection.triggers.filter(active=True))
        if not triggers:
            continue
        known = set(
            Twin.objects.filter(connection=connection, local_request_id__in=ids).values_list(
                "local_request_id", flat=True
            )
        )
        # A closed twin keeps its request out of the triggers until it is exalated again.
        untracked = [i for i in ids if i not in known]
        if untracked:
            started += start_matching_twins(connection, triggers, untracked, gateway)
    if marked or started:
        wake_workers_now()
    return marked, started


def _known_already(
    twin: Twin, updated: dict[int, datetime | None], shown: dict[int, set[str]]
) -> bool:
    """Read since the change a poll lists, or showing only what this twin's own last write
    left (a webhook or a poll of that write: content, never a marker or a time alone)."""
    if twin.has_seen(updated.get(twin.local_request_id)):
        return True
    return bool(twin.written_digest) and shown.get(twin.local_request_id) == {twin.written_digest}


def start_matching_twins(
    connection: Connection,
    triggers: list[Trigger],
    request_ids: list[int],
    gateway: Gateway | None,
) -> int:
    """Ask Xurrent which of these requests match each trigger (one call per trigger and
    hundred ids: Xurrent evaluates its own filter syntax) and start twins for them."""
    gateway = gateway or get_gateway(Purpose.POLL)
    started = 0
    for trigger in triggers:
        try:
            filters = parse_query(trigger.query)
        except ScopeError:
            logger.warning("Trigger %s has a query that is no longer valid", trigger.pk)
            continue
        for chunk_start in range(0, len(request_ids), IDS_PER_CALL):
            chunk = request_ids[chunk_start : chunk_start + IDS_PER_CALL]
            page = first_page(
                gateway, {**filters, "id": ",".join(str(i) for i in chunk)}, per_page=IDS_PER_CALL
            )
            # A few statements for the page, not a few per request (a poll after many
            # changes, bulk exalate's requests among them, lists hundreds).
            started += start_twins(connection, _not_synced_yet(connection, page.items))
    return started


def consume_webhook_hints(limit: int = 500) -> int:
    """Take the webhook hints stored since the last round: they only say which requests
    changed; the producer reads each one back. Returns how many hints were taken."""
    from xurrent.models import WebhookHint

    hints = list(WebhookHint.objects.pending().values_list("pk", "object_id", "digest")[:limit])
    if not hints:
        return 0
    request_ids = [object_id for _, object_id, _ in hints if object_id is not None]
    note_changed_requests(request_ids, shown=_contents_shown(hints))
    WebhookHint.objects.filter(pk__in=[pk for pk, _, _ in hints]).update(processed=True)
    return len(hints)


def _contents_shown(hints: list[tuple[int, int | None, str]]) -> dict[int, set[str]]:
    """Per request, the contents (digests) its hints showed, when each of them showed
    one: a hint without (a note added, a payload of another shape) is always read back."""
    shown: dict[int, set[str]] = {}
    blind: set[int] = set()
    for _, object_id, digest in hints:
        if object_id is None:
            continue
        if digest:
            shown.setdefault(object_id, set()).add(digest)
        else:
            blind.add(object_id)
    return {request_id: d for request_id, d in shown.items() if request_id not in blind}


def poll_xurrent(*, every: float, gateway: Gateway | None = None, force: bool = False) -> int:
    """Ask Xurrent for requests updated since the watermark (less an overlap), when the
    last poll is `every` seconds old. Returns how many changed requests it saw.

    The watermark is Xurrent's own clock (its `Date` header), never this server's. The
    first poll only sets it: what changed before is bulk exalate's business.
    """
    state = PollState.account()
    now = timezone.now()
    due = state.polled_at is None or (now - state.polled_at).total_seconds() >= every
    if not (due or force or state.requested):
        return 0
    gateway = gateway or get_gateway(Purpose.POLL)
    PollState.objects.filter(pk=state.pk).update(polled_at=now, requested=False)
    if state.watermark is None:
        page = first_page(gateway, {}, sort="-updated_at", per_page=1)
        _advance_watermark(state, _date_of(page), page.items)
        return 0
    since = state.watermark - POLL_OVERLAP
    filters = {"updated_at": f">={xurrent_time(since)}"}
    seen: dict[int, datetime | None] = {}
    shown: dict[int, set[str]] = {}
    first_time: datetime | None = None
    items: list[dict] = []
    for page in gateway.request_pages(filters, sort="updated_at", per_page=100):
        first_time = first_time or _date_of(page)
        items += page.items
        for item in page.items:
            if item.get("id") is not None:
                seen[int(item["id"])] = parse_time(item.get("updated_at"))
                shown[int(item["id"])] = {request_digest(item)}
    note_changed_requests(seen, gateway=gateway, updated=seen, shown=shown)
    _advance_watermark(state, first_time, items)
    return len(seen)


def _advance_watermark(state: PollState, server_time: datetime | None, items: list[dict]):
    """Xurrent's time of the poll's first answer; without a Date header, the newest
    `updated_at` seen. Never backwards."""
    candidate = server_time or _newest_update(items)
    if candidate is None:
        return
    if state.watermark is not None and candidate <= state.watermark:
        return
    PollState.objects.filter(pk=state.pk).update(watermark=candidate)


def _newest_update(items: list[dict]) -> datetime | None:
    times = [parse_time(i.get("updated_at")) for i in items]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def _date_of(page) -> datetime | None:
    info = getattr(page, "info", None)
    return getattr(info, "date", None)


# --- bulk exalate ----------------------------------------------------------------------------


def start_bulk_exalate(
    connection: Connection, user=None, *, by_worker: bool = False
) -> tuple[BulkExalate, bool]:
    """A bulk exalate of every current trigger match; pressing it again while one runs
    (or waits) gives that one. Returns (run, started now). `by_worker`: the worker runs
    it (a page must not wait on Xurrent); else the caller runs it (run_bulk_exalate)."""
    if not connection.triggers.filter(active=True).exists():
        raise ScopeError("The connection has no active trigger: add one first.")
    if connection.status not in (Status.ACTIVE, Status.DEACTIVATED) or not connection.is_paired:
        raise ScopeError(f"The connection is {connection.status_in_words}: it cannot sync yet.")
    unfinished = (BulkState.WAITING, BulkState.RUNNING)
    running = connection.bulk_exalates.filter(state__in=unfinished).first()
    if running is not None:
        return running, False
    state = BulkState.WAITING if by_worker else BulkState.RUNNING
    try:
        with transaction.atomic():
            run = BulkExalate.objects.create(connection=connection, started_by=user, state=state)
            if by_worker:
                wake_workers()
            return run, True
    except IntegrityError:
        return connection.bulk_exalates.get(state__in=unfinished), False


def run_waiting_bulk_exalates(*, gateway: Gateway | None = None) -> int:
    """The worker's part: run the bulk exalates pressed on the pages; returns how many."""
    done = 0
    for run in BulkExalate.objects.filter(state=BulkState.WAITING).select_related("connection"):
        # Taken by this worker only if no other took it first.
        if BulkExalate.objects.filter(pk=run.pk, state=BulkState.WAITING).update(
            state=BulkState.RUNNING
        ):
            run_bulk_exalate(run, gateway=gateway)
            done += 1
    return done


def run_bulk_exalate(
    run: BulkExalate, *, gateway: Gateway | None = None, progress=None
) -> BulkExalate:
    """Go through every match of the connection's active triggers and start a twin for
    each request no twin holds yet. `progress(run)` is called after each page (and while
    the run waits for bulk's share of the rate budget)."""
    gateway = gateway or get_gateway(Purpose.BULK)
    connection = run.connection
    try:
        for trigger in connection.triggers.filter(active=True):
            _bulk_one_trigger(run, trigger, gateway, progress)
    except (GatewayError, ScopeError) as exc:
        message = getattr(exc, "message", str(exc))
        BulkExalate.objects.filter(pk=run.pk).update(
            state=BulkState.FAILED, finished_at=timezone.now(), message=message[:500]
        )
        run.refresh_from_db()
        return run
    BulkExalate.objects.filter(pk=run.pk).update(
        state=BulkState.FINISHED, finished_at=timezone.now()
    )
    run.refresh_from_db()
    wake_workers_now()
    return run


def _bulk_one_trigger(run: BulkExalate, trigger: Trigger, gateway: Gateway, progress) -> None:
    filters = parse_query(trigger.query)
    after = 0  # the last request id gone through: after a wait, the list resumes past it
    while True:
        # Triggers cannot filter on id, so `id>…` is free for resuming.
        since = {**filters, "id": f">{after}"} if after else filters
        try:
            for page in gateway.request_pages(since, sort="id", per_page=100):
                after = _bulk_one_page(run, page, progress) or after
            return
        except BudgetWait as wait:
            _bulk_waits(run, wait.retry_at, progress)
        except GatewayError as exc:
            if exc.kind != "rate_limited" or exc.retry_at is None:
                raise
            PollState.pause_account(exc.retry_at)  # Xurrent's 429: every worker waits
            _bulk_waits(run, exc.retry_at, progress)


def _bulk_waits(run: BulkExalate, until: datetime, progress) -> None:
    """Bulk's share of the rate budget is spent (or Xurrent said to wait): the run says
    so and sleeps, keeping its lease, rather than take what incoming changes and polls
    need."""
    run.wait_for_budget(until)
    if progress is not None:
        progress(run)
    seconds = (until - timezone.now()).total_seconds()
    _sleep(min(max(seconds, 0.05), BULK_NAP))


def _bulk_one_page(run: BulkExalate, page, progress) -> int | None:
    """Start a twin for each request of the page no twin holds (a few statements for the
    page); the page's last id."""
    found = len(page.items)
    waiting = _not_synced_yet(run.connection, page.items)
    exalated = start_twins(run.connection, waiting, bulk_run=run)
    _count(run, found=found, exalated=exalated, skipped=found - exalated)
    if progress is not None:
        run.refresh_from_db()
        progress(run)
    return int(page.items[-1]["id"]) if page.items else None


def _count(run: BulkExalate, **counts: int) -> None:
    from django.db.models import F

    BulkExalate.objects.filter(pk=run.pk).update(
        **{name: F(name) + value for name, value in counts.items()}
    )
