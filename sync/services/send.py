"""Sending: this side's events to the other side, and the results of the other side's
events back to it (acks). Both with the node token of the connection."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from connections.auth import token_for
from connections.models import Connection
from connections.services.peer import describe_rejection
from nodes import client
from sync.models import (
    ErrorKind,
    ErrorPlace,
    EventState,
    InboundEvent,
    SyncEvent,
    Twin,
    TwinStatus,
)
from sync.models.claims import claim
from sync.serializers import BATCH_MAX, PROTOCOL
from sync.services.errors import record_error, resolve_errors, twins_with_open_errors
from sync.services.receive import (
    Refused,
    mark_sent,
    receive_event,
    receive_result,
    record_result,
)

logger = logging.getLogger(__name__)

# The other side's connection is not active: ask again after this long (no error).
HOLD = timedelta(seconds=5)
HOLD_MAX = timedelta(seconds=60)


@dataclass
class SendReport:
    sent: int = 0
    held: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.sent + self.held + self.retrying + self.failed


# Calls to peers made at the same time by one worker: the answers of other nodes are
# waited for together, not one after the other (each call is for another twin, so the
# order within a twin holds).
PARALLEL_CALLS = 8
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()

Answer = tuple[int, Any] | client.NodeError


@dataclass(frozen=True)
class PeerCall:
    connection: Connection
    path: str  # "/sync/" or "/sync/ack/"
    body: dict


def call_peer(connection: Connection, path: str, body: dict) -> tuple[int, Any]:
    """POST to the other side of `connection`; NodeError when it cannot be reached."""
    (answer,) = call_peers([PeerCall(connection, path, body)])
    if isinstance(answer, client.NodeError):
        raise answer
    return answer


def call_peers(calls: list[PeerCall]) -> list[Answer]:
    """Make these calls and return their answers in the same order (a NodeError for a
    peer that could not be reached). Calls to other nodes go out together, each with a
    fresh token made here; a local connection (both sides on this node) is served
    in-process: a single-worker server must never call itself."""
    answers: list[Answer | None] = [None] * len(calls)
    remote = []
    for index, call in enumerate(calls):
        if call.connection.is_local:
            answers[index] = _call_local(call.connection, call.path, call.body)
            continue
        base = f"/api/v1/connections/{call.connection.remote_connection_id}"
        headers = {"Authorization": f"Bearer {token_for(call.connection)}"}
        remote.append((index, call.connection.remote_url, base + call.path, call.body, headers))
    if len(remote) == 1:
        index, *args = remote[0]
        answers[index] = _post(*args)
    elif remote:
        pool = _executor()
        futures = [(index, pool.submit(_post, *args)) for index, *args in remote]
        for index, future in futures:
            answers[index] = future.result()
    return answers  # type: ignore[return-value]


# --- batches: the calls for one peer in one call -------------------------------------------

# A batch body stays well below what a node takes in one call (Django's 2.5 MB default).
BATCH_BYTES = 1_000_000
# A peer that answered a batch with 400 (a node from before batches) is sent its events
# one by one for this long, then asked again (it may have been upgraded).
SINGLES_FOR = 600.0
_singles_until: dict[str, float] = {}


def call_peers_batched(calls: list[PeerCall], key: str) -> list[Answer]:
    """`call_peers`, with the calls to one remote connection sent together as
    `{"protocol": 1, key: [body, ...]}` (in their order: a twin's events keep theirs);
    each call still gets its own answer, `(status, body)` or a NodeError. A peer that
    does not take batches is sent the bodies one by one."""
    answers: list[Answer | None] = [None] * len(calls)
    chunks, singles = _group(calls)
    batched = [
        PeerCall(
            calls[chunk[0]].connection,
            calls[chunk[0]].path,
            {"protocol": PROTOCOL, key: [calls[i].body for i in chunk]},
        )
        for chunk in chunks
    ]
    results = call_peers(batched + [calls[i] for i in singles])
    for index, answer in zip(singles, results[len(batched) :], strict=True):
        answers[index] = answer
    again: list[int] = []
    for chunk, answer in zip(chunks, results[: len(batched)], strict=True):
        unpacked = _unpack(answer, len(chunk))
        if unpacked is None:
            _singles_until[str(calls[chunk[0]].connection.pk)] = time.monotonic() + SINGLES_FOR
            again += chunk
            continue
        for index, one in zip(chunk, unpacked, strict=True):
            answers[index] = one
    if again:
        for index, answer in zip(again, call_peers([calls[i] for i in again]), strict=True):
            answers[index] = answer
    return answers  # type: ignore[return-value]


def _group(calls: list[PeerCall]) -> tuple[list[list[int]], list[int]]:
    """Indexes of the calls to send as batches (per remote connection, split by count and
    size) and of those to send alone (local connections, a peer taking singles, a batch
    of one)."""
    by_connection: dict[str, list[int]] = {}
    singles: list[int] = []
    now = time.monotonic()
    for index, call in enumerate(calls):
        key = str(call.connection.pk)
        if call.connection.is_local or _singles_until.get(key, 0.0) > now:
            singles.append(index)
        else:
            by_connection.setdefault(key, []).append(index)
    chunks: list[list[int]] = []
    for indexes in by_connection.values():
        chunk: list[int] = []
        size = 0
        for index in indexes:
            body_size = len(json.dumps(calls[index].body, separators=(",", ":")))
            if chunk and (len(chunk) >= BATCH_MAX or size + body_size > BATCH_BYTES):
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(index)
            size += body_size
        chunks.append(chunk)
    singles += [chunk[0] for chunk in chunks if len(chunk) == 1]
    return [chunk for chunk in chunks if len(chunk) > 1], sorted(singles)


def _unpack(answer: Answer, count: int) -> list[Answer] | None:
    """A batch's answer as one answer per item; None when the peer does not take batches
    (it answered 400 without results: nothing was stored, send them one by one)."""
    if isinstance(answer, client.NodeError):
        return [answer] * count
    status, body = answer
    results = body.get("results") if isinstance(body, dict) else None
    if status in (200, 202):
        if isinstance(results, list) and len(results) == count:
            return [_one_result(item) for item in results]
        return [_one_result(None)] * count  # retried, as a peer's server error is
    if status == 400:
        return None
    # The call as a whole was answered (401, 409 connection_inactive, 429, 5xx, ...):
    # each item takes that answer.
    return [answer] * count


def _one_result(item: Any) -> Answer:
    if not isinstance(item, dict) or not isinstance(item.get("status"), int):
        return 502, {"code": "invalid_answer", "detail": "The batch answer lacks a result."}
    return item["status"], {k: v for k, v in item.items() if k != "status"}


def _post(url: str, path: str, body: dict, headers: dict) -> Answer:
    """One call to another node (in a pool thread: no database here)."""
    try:
        return client.request("POST", url, path, json_body=body, headers=headers)
    except client.NodeError as exc:
        return exc


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(PARALLEL_CALLS, thread_name_prefix="sync-peer")
        return _pool


def _call_local(connection: Connection, path: str, body: dict) -> tuple[int, Any]:
    peer = connection.local_peer()
    if peer is None:
        return 404, {"code": "unknown_connection", "detail": "The other side is gone."}
    try:
        if path == "/sync/":
            return 202, receive_event(peer, body)
        return 200, receive_result(peer, body)
    except Refused as exc:
        return exc.status, {"code": exc.code, "detail": exc.detail}


# --- events ---------------------------------------------------------------------------------


def send_events(*, limit: int = 20, connection=None) -> SendReport:
    """Send up to `limit` due events (at most one per twin, the oldest unsent)."""
    report = SendReport()
    due = SyncEvent.objects.sendable().select_related("twin", "connection")
    if connection is not None:
        due = due.filter(connection=connection)
    events = claim(
        due,
        limit,
        SyncEvent.LEASE,
        order_by=("next_try_at", "id"),
        related=("twin", "connection"),
        state=EventState.IN_PROGRESS,
        attempts=F("attempts") + 1,
    )
    if not events:
        return report
    troubled = twins_with_open_errors([e.twin for e in events])
    calls = [PeerCall(e.connection, "/sync/", e.wire_body()) for e in events]
    answers = call_peers_batched(calls, "events")
    stored = []
    for event, answer in zip(events, answers, strict=True):
        if _stored_there(answer) and event.twin_id not in troubled:
            stored.append(event.pk)  # the common case: settled together below
            report.sent += 1
            continue
        outcome = take_answer(event, answer, troubled=event.twin_id in troubled)
        setattr(report, outcome, getattr(report, outcome) + 1)
    mark_sent(stored)
    if report.sent:
        # The other side answered: what kept the connection from sending is gone.
        for connection_id in {e.connection_id for e in events}:
            resolve_errors(connection=connection_id, place=ErrorPlace.SEND, twin_level=False)
    return report


def _stored_there(answer: Answer) -> bool:
    """The other side stored the event and will send its result later."""
    if isinstance(answer, client.NodeError):
        return False
    status, body = answer
    return status in (200, 202) and isinstance(body, dict) and body.get("state") == "queued"


def send_event(event: SyncEvent) -> str:
    """One attempt at a claimed event: "sent", "held", "retrying" or "failed"."""
    (answer,) = call_peers([PeerCall(event.connection, "/sync/", event.wire_body())])
    return take_answer(event, answer)


def take_answer(event: SyncEvent, answer: Answer, *, troubled: bool = True) -> str:
    """What the other side said to a claimed event: "sent", "held", "retrying", "failed"."""
    if isinstance(answer, client.NodeError):
        return _retry(event, ErrorKind.NETWORK, answer.message)
    status, answer = answer
    code = answer.get("code") if isinstance(answer, dict) else None
    if status in (200, 202) and isinstance(answer, dict) and answer.get("state"):
        _record(event, answer)
        if troubled:
            resolve_errors(twin=event.twin, place=ErrorPlace.SEND)
        return "sent"
    if status == 409 and code == "connection_inactive":
        _hold(event)
        return "held"
    if status == 410 and code == "twin_unexalated":
        _unexalated_there(event)
        return "sent"
    if status == 429 or status >= 500:
        return _retry(event, ErrorKind.PEER, f"The other side answered HTTP {status}.")
    if status in (401, 403) or code == "unknown_connection":
        # The connection itself is broken (keys, a side deleted): every event would fail.
        return _retry(event, ErrorKind.PEER, describe_rejection(status, answer).message, level=True)
    detail = answer.get("detail") if isinstance(answer, dict) else ""
    message = f"The other side refused the event (HTTP {status}, {code or 'no code'}): {detail}"
    _fail(event, message)
    return "failed"


def _record(event: SyncEvent, answer: dict) -> None:
    state = answer.get("state")
    if state not in ("queued", "applied", "superseded", "failed"):
        state = "queued"
    record_result(event, {**answer, "state": state})


def _hold(event: SyncEvent) -> None:
    """The other side's connection is not active: keep the event, ask again later."""
    wait = min(HOLD * 2 ** min(event.attempts - 1, 6), HOLD_MAX)
    SyncEvent.objects.filter(pk=event.pk, lease_token=event.lease_token).update(
        state=EventState.QUEUED,
        next_try_at=timezone.now() + wait,
        lease_until=None,
        lease_token=None,
        last_error="The other side's connection is not active: waiting for it.",
    )


def _retry(event: SyncEvent, kind: str, message: str, *, level: bool = False) -> str:
    next_try = timezone.now() + event.backoff()
    SyncEvent.objects.filter(pk=event.pk, lease_token=event.lease_token).update(
        state=EventState.QUEUED,
        next_try_at=next_try,
        lease_until=None,
        lease_token=None,
        last_error=message[:5000],
    )
    error = record_error(
        connection=event.connection,
        twin=None if level else event.twin,
        event_uuid=event.uuid,
        place=ErrorPlace.SEND,
        kind=kind,
        message=f"{message} Next try at {next_try:%H:%M:%S}.",
        next_try_at=next_try,
    )
    if error.blocking:
        _fail(event, message, record=False)
        return "failed"
    return "retrying"


def _fail(event: SyncEvent, message: str, *, record: bool = True) -> None:
    SyncEvent.objects.filter(pk=event.pk).update(
        state=EventState.FAILED,
        finished_at=timezone.now(),
        lease_until=None,
        lease_token=None,
        last_error=message[:5000],
    )
    if record:
        record_error(
            connection=event.connection,
            twin=event.twin,
            event_uuid=event.uuid,
            place=ErrorPlace.SEND,
            kind=ErrorKind.PEER,
            message=message,
            blocking=True,
        )


def _unexalated_there(event: SyncEvent) -> None:
    """The other side closed the twin: close it here too; nothing more is sent for it."""
    from sync.services.scope import close_twin

    with transaction.atomic():
        twin = Twin.objects.select_for_update().get(pk=event.twin_id)
        SyncEvent.objects.filter(pk=event.pk).update(
            state=EventState.SUPERSEDED,
            finished_at=timezone.now(),
            lease_until=None,
            lease_token=None,
            last_error="The other side unexalated this request.",
        )
        if twin.status != TwinStatus.CLOSED:
            close_twin(twin, tell_peer=False)


# --- acks -----------------------------------------------------------------------------------


def send_acks(*, limit: int = 50, connection=None) -> int:
    """Tell the other side the results of its events; returns how many were delivered."""
    acks = _claim_acks(limit, connection)
    calls = [PeerCall(i.connection, "/sync/ack/", _ack_body(i)) for i in acks]
    answers = call_peers_batched(calls, "results")
    delivered = [i.pk for i, answer in zip(acks, answers, strict=True) if _ack_taken(answer)]
    taken = set(delivered)
    # The delivered ones in one statement; the others wait for their next try.
    InboundEvent.objects.filter(pk__in=delivered).update(ack_pending=False)
    for inbound, answer in zip(acks, answers, strict=True):
        if inbound.pk not in taken:
            _take_ack_answer(inbound, answer)
    return len(delivered)


def _claim_acks(limit: int, connection=None) -> list[InboundEvent]:
    now = timezone.now()
    db = InboundEvent.objects.db
    with transaction.atomic():
        due = InboundEvent.objects.acks_due(now).order_by("ack_next_try_at", "id")
        if connection is not None:
            due = due.filter(connection=connection)
        if connections[db].features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        # Pushing the next try ahead is the claim: nobody else takes them for a minute.
        InboundEvent.objects.filter(pk__in=ids).update(ack_next_try_at=now + timedelta(minutes=1))
    return list(InboundEvent.objects.filter(pk__in=ids).select_related("connection"))


def send_ack(inbound: InboundEvent) -> bool:
    (answer,) = call_peers([PeerCall(inbound.connection, "/sync/ack/", _ack_body(inbound))])
    return _take_ack_answer(inbound, answer)


def _ack_body(inbound: InboundEvent) -> dict:
    body = {"protocol": PROTOCOL, **inbound.answer()}
    if inbound.error:
        body["line"] = _error_line(inbound)
    return body


def _ack_taken(answer: Answer) -> bool:
    """The other side took the result (or never sent that event: nothing to tell)."""
    if isinstance(answer, client.NodeError):
        return False
    status, body = answer
    code = body.get("code") if isinstance(body, dict) else None
    return status == 200 or code == "event_not_found"


def _take_ack_answer(inbound: InboundEvent, answer: Answer) -> bool:
    if _ack_taken(answer):
        InboundEvent.objects.filter(pk=inbound.pk).update(ack_pending=False)
        return True
    if isinstance(answer, client.NodeError):
        _ack_later(inbound, answer.message)
        return False
    status, answer = answer
    code = answer.get("code") if isinstance(answer, dict) else None
    _ack_later(inbound, f"The other side answered HTTP {status} ({code or 'no code'}).")
    return False


def _error_line(inbound: InboundEvent) -> int | None:
    if not inbound.error:
        return None
    error = inbound.twin.errors.filter(event_uuid=inbound.uuid).first()
    return error.line if error else None


def _ack_later(inbound: InboundEvent, message: str) -> None:
    inbound.ack_attempts += 1
    next_try = timezone.now() + inbound.ack_backoff()
    InboundEvent.objects.filter(pk=inbound.pk).update(
        ack_attempts=F("ack_attempts") + 1, ack_next_try_at=next_try
    )
    logger.warning(
        "Result of event %s not delivered (next try %s): %s", inbound.uuid, next_try, message
    )
