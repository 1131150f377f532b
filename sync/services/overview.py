"""What the Sync tab shows of a connection: the queue, the twins and their history, the
open errors, and where each request's page is. Read only; nothing here changes state."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from connections.models import Connection
from nodes.models import GeneralSettings
from sync.entity import ordered
from sync.models import (
    EventAction,
    EventState,
    InboundEvent,
    InboundState,
    SyncError,
    SyncEvent,
    Twin,
    TwinStatus,
)

UNSENT = (EventState.QUEUED, EventState.IN_PROGRESS)
# A value longer than this is cut in the history (the whole replica is on the twin page).
VALUE_SHOWN = 300
HISTORY_SHOWN = 50
ERRORS_SHOWN = 100


# --- links to the requests' pages -----------------------------------------------------------


def request_page_url(api_url: str, account: str, request_id: Any) -> str:
    """The page of a request in Xurrent's web UI, from the account's API URL.

    Xurrent serves each account's UI on its own host beside the API's:
    https://api.xurrent.com/v1 → https://ACCOUNT.xurrent.com/requests/ID (regional and QA
    hosts alike: api.uk.xurrent.com → ACCOUNT.uk.xurrent.com). Any other address (the
    simulator, a proxy) serves the pages where its API is, without the /v1:
    http://127.0.0.1:PORT/v1 → http://127.0.0.1:PORT/requests/ID.
    """
    parts = urlsplit(api_url)
    if not parts.scheme or not parts.netloc or request_id in (None, ""):
        return ""
    path = parts.path.rstrip("/").removesuffix("/v1")
    host = parts.hostname or ""
    netloc = parts.netloc
    if host.startswith("api.") and account:
        netloc = f"{account}.{host[4:]}" + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{netloc}{path}/requests/{request_id}"


@dataclass(frozen=True)
class RequestLinks:
    """Where the two requests of a connection's twins are shown.

    This side's requests are in this node's Xurrent account. On a local connection the
    other side's are too (both sides share the account). A remote node's account is not
    known here: its twin page on that node (the same twin id there) links to its request.
    """

    connection: Connection
    api_url: str
    account: str

    @classmethod
    def of(cls, connection: Connection) -> RequestLinks:
        node = GeneralSettings.load()
        return cls(connection, node.xurrent_api_url or "", node.xurrent_account or "")

    def local(self, request_id: Any) -> str:
        return request_page_url(self.api_url, self.account, request_id)

    def remote(self, twin: Twin) -> str:
        if not twin.remote_request_id:
            return ""
        if self.connection.is_local:
            return self.local(twin.remote_request_id)
        base = (self.connection.remote_url or "").rstrip("/")
        if not base or not self.connection.remote_connection_id:
            return ""
        return (
            f"{base}/connections/{self.connection.remote_connection_id}/sync/twins/{twin.twin_id}/"
        )

    @property
    def remote_is_node_page(self) -> bool:
        return not self.connection.is_local


# --- the queue ------------------------------------------------------------------------------


@dataclass
class QueueSummary:
    """The connection's sync queue both ways. `failed` counts events whose twin still
    has an open error (Retry or Resolve settles them)."""

    to_read: int = 0  # changed requests the producer has not read yet
    out_waiting: int = 0
    out_retrying: int = 0
    out_in_progress: int = 0
    out_sent: int = 0  # the other side stored it; its result is awaited
    out_failed: int = 0
    in_waiting: int = 0
    in_failed: int = 0
    acks: int = 0  # results of the other side's events still to tell it
    oldest: datetime | None = None

    @property
    def waiting(self) -> int:
        return self.to_read + self.out_waiting + self.in_waiting

    @property
    def in_progress(self) -> int:
        return self.out_in_progress + self.out_sent

    @property
    def failed(self) -> int:
        return self.out_failed + self.in_failed

    @property
    def pending(self) -> bool:
        return bool(self.waiting or self.in_progress or self.acks)


def _with_open_error() -> Exists:
    return Exists(SyncError.objects.unresolved().filter(twin=OuterRef("twin")))


def queue_summary(connection: Connection) -> QueueSummary:
    out = SyncEvent.objects.filter(connection=connection).aggregate(
        waiting=Count("id", filter=Q(state=EventState.QUEUED)),
        retrying=Count("id", filter=Q(state=EventState.QUEUED, attempts__gt=0)),
        in_progress=Count("id", filter=Q(state=EventState.IN_PROGRESS)),
        sent=Count("id", filter=Q(state=EventState.SENT)),
        oldest=Min("created_at", filter=Q(state__in=(*UNSENT, EventState.SENT))),
    )
    inbound = InboundEvent.objects.filter(connection=connection).aggregate(
        waiting=Count("id", filter=Q(state=InboundState.QUEUED)),
        acks=Count("id", filter=Q(ack_pending=True)),
        oldest=Min("received_at", filter=Q(state=InboundState.QUEUED)),
    )
    dirty = connection.twins.filter(dirty=True, status=TwinStatus.OPEN).aggregate(
        n=Count("id"), oldest=Min("dirty_at")
    )
    out_failed = (
        SyncEvent.objects.filter(connection=connection, state=EventState.FAILED)
        .filter(_with_open_error())
        .count()
    )
    in_failed = (
        InboundEvent.objects.filter(connection=connection, state=InboundState.FAILED)
        .filter(_with_open_error())
        .count()
    )
    times = [t for t in (out["oldest"], inbound["oldest"], dirty["oldest"]) if t is not None]
    return QueueSummary(
        to_read=dirty["n"],
        out_waiting=out["waiting"],
        out_retrying=out["retrying"],
        out_in_progress=out["in_progress"],
        out_sent=out["sent"],
        out_failed=out_failed,
        in_waiting=inbound["waiting"],
        in_failed=in_failed,
        acks=inbound["acks"],
        oldest=min(times) if times else None,
    )


# --- twins ----------------------------------------------------------------------------------


def twins_for_tab(connection: Connection, *, q: str = "", status: str = "") -> QuerySet:
    """The connection's twins, newest first, searched by request id (either side's) and
    filtered by status."""
    twins = connection.twins.all()
    q = q.strip().lstrip("#")
    if q:
        condition = Q(remote_request_id=q)
        if q.isdigit():
            condition |= Q(local_request_id=int(q))
        twins = twins.filter(condition)
    if status in TwinStatus.values:
        twins = twins.filter(status=status)
    return twins.order_by("-created_at", "-id")


def with_last_events(twins: list[Twin]) -> list[Twin]:
    """The twins (one page of them) with what the table shows of each: the last event
    sent and received, and how many errors are open. Asked for the page's twins only, so
    a connection with many twins costs no more than one with a few."""
    sent = SyncEvent.objects.filter(
        twin=OuterRef("pk"), state__in=(EventState.SENT, EventState.APPLIED, EventState.FAILED)
    ).order_by("-seq")
    received = InboundEvent.objects.filter(twin=OuterRef("pk")).order_by("-seq")
    errors = (
        SyncError.objects.unresolved()
        .filter(twin=OuterRef("pk"))
        .order_by()
        .values("twin")
        .annotate(n=Count("id"))
        .values("n")
    )
    annotated = Twin.objects.filter(pk__in=[t.pk for t in twins]).annotate(
        sent_seq=Subquery(sent.values("seq")[:1]),
        sent_state=Subquery(sent.values("state")[:1]),
        sent_at=Subquery(sent.annotate(at=Coalesce("sent_at", "finished_at")).values("at")[:1]),
        received_seq=Subquery(received.values("seq")[:1]),
        received_state=Subquery(received.values("state")[:1]),
        received_at=Subquery(received.values("received_at")[:1]),
        open_errors=Coalesce(Subquery(errors), 0),
    )
    by_pk = {twin.pk: twin for twin in annotated}
    return [by_pk[t.pk] for t in twins if t.pk in by_pk]


def twin_counts(connection: Connection) -> dict[str, int]:
    counts = dict(connection.twins.order_by().values_list("status").annotate(n=Count("id")))
    return {"all": sum(counts.values()), **{s: counts.get(s, 0) for s in TwinStatus.values}}


# --- a twin's history -----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str
    after: str


@dataclass
class HistoryEntry:
    direction: str  # "out" (sent to the other side) or "in" (received from it)
    seq: int
    action: str
    state: str
    state_label: str
    at: datetime
    changes: list[FieldChange] = field(default_factory=list)
    error: str = ""

    @property
    def is_unexalate(self) -> bool:
        return self.action == EventAction.UNEXALATE


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= VALUE_SHOWN else text[: VALUE_SHOWN - 1] + "…"


def replica_changes(before: dict | None, after: dict | None) -> list[FieldChange]:
    """The replica fields that differ between two replicas, in reading order."""
    before, after = before or {}, after or {}
    names = ordered({name: None for name in set(before) | set(after)})
    return [
        FieldChange(name, _shown(before.get(name)), _shown(after.get(name)))
        for name in names
        if before.get(name) != after.get(name)
    ]


def twin_history(twin: Twin, limit: int = HISTORY_SHOWN) -> list[HistoryEntry]:
    """What each sync of the twin changed, both ways, newest first: for each event, the
    replica fields that differ from the replica before it."""
    entries = [
        HistoryEntry(
            "out",
            event.seq,
            event.action,
            event.state,
            event.get_state_display(),
            event.created_at,
            replica_changes(event.previous, event.replica),
            event.last_error if event.state == EventState.FAILED else "",
        )
        for event in twin.events.order_by("-seq")[:limit]
    ]
    entries += [
        HistoryEntry(
            "in",
            event.seq,
            event.action,
            event.state,
            event.get_state_display(),
            event.received_at,
            replica_changes(event.previous, event.replica),
            event.error,
        )
        for event in twin.inbound_events.order_by("-seq")[:limit]
    ]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def replica_json(replica: dict | None) -> str:
    if replica is None:
        return ""
    return json.dumps(ordered(replica), indent=2, ensure_ascii=False)


# --- errors ---------------------------------------------------------------------------------


@dataclass
class ErrorRow:
    error: SyncError
    holds_back: str
    can_act: bool

    @property
    def retrying_by_itself(self) -> bool:
        return self.error.next_try_at is not None and not self.error.blocking


def open_errors(
    connection: Connection, *, twin: Twin | None = None, limit: int = ERRORS_SHOWN
) -> list[ErrorRow]:
    """The connection's (or one twin's) open errors, those that hold something back
    first; for each, what it holds back. Errors of this node's Xurrent account (polling)
    are every connection's, so they are listed too. Errors of the other side are shown,
    not acted on here."""
    errors = SyncError.objects.unresolved().filter(of_connection(connection))
    if twin is not None:
        errors = errors.filter(twin=twin)
    errors = list(
        errors.select_related("twin").order_by("-blocking", "-last_seen_at", "-id")[:limit]
    )
    twin_ids = {e.twin_id for e in errors if e.twin_id}
    waiting_out = _counts(SyncEvent.objects.filter(twin_id__in=twin_ids, state__in=UNSENT))
    waiting_in = _counts(
        InboundEvent.objects.filter(twin_id__in=twin_ids, state=InboundState.QUEUED)
    )
    return [
        ErrorRow(
            e,
            _holds_back(e, waiting_out.get(e.twin_id, 0) + waiting_in.get(e.twin_id, 0)),
            can_act=not e.remote,
        )
        for e in errors
    ]


def of_connection(connection: Connection) -> Q:
    """The errors a connection's page shows: its own, and the node's."""
    return Q(connection=connection) | Q(connection__isnull=True)


def _counts(events: QuerySet) -> dict[int, int]:
    return dict(events.order_by().values_list("twin_id").annotate(n=Count("id")))


def _holds_back(error: SyncError, waiting: int) -> str:
    if error.remote:
        return "Nothing here: it is retried on the other side."
    if error.connection_id is None:
        return (
            "Changes in Xurrent are not noticed by polling while it lasts (webhooks still "
            "are); it is retried by itself."
        )
    if error.twin_id is None:
        return "The changes of this connection wait while it lasts; it is retried by itself."
    request = (
        f"request #{error.twin.local_request_id}"
        if error.twin.local_request_id
        else (f"the copy of request {error.twin.remote_request_id or '…'}")
    )
    if not error.blocking:
        return f"Nothing yet: {request} is retried by itself."
    later = f"; {waiting} later change{'s' if waiting != 1 else ''} wait" if waiting else ""
    return f"Every change of {request}{later}, until Retry or Resolve."


def blocked_twins(connection: Connection) -> int:
    return connection.twins.filter(status=TwinStatus.BLOCKED).count()
