"""The receiving side of the protocol: storing the other side's events (never applying
them inside the call: a request never waits on Xurrent), and taking in the results of
this side's events."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from connections.models import Connection, Status
from nodes.wakeup import wake_workers
from sync.models import (
    ErrorKind,
    ErrorPlace,
    EventAction,
    EventState,
    InboundEvent,
    InboundState,
    SyncEvent,
    Twin,
    TwinOrigin,
    TwinStatus,
)
from sync.serializers import BATCH_MAX, PROTOCOL, SyncAnswerSerializer, SyncEventSerializer
from sync.services.errors import record_error

logger = logging.getLogger(__name__)


class Refused(Exception):
    """The event or result is refused: `status`, `code` and a sentence for the sender."""

    def __init__(self, status: int, code: str, detail: str, errors: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors

    def body(self) -> dict:
        """The error body the other side gets."""
        body = {"code": self.code, "detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return body


def digest_of(body: Any) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_protocol(body: Any) -> None:
    if not isinstance(body, dict):
        raise Refused(400, "invalid_request", "The body must be a JSON object.")
    if body.get("protocol") != PROTOCOL:
        raise Refused(
            400,
            "unsupported_protocol",
            f"This node speaks sync protocol {PROTOCOL}; the body said {body.get('protocol')!r}.",
        )


def _check_active(connection: Connection) -> None:
    if connection.status != Status.ACTIVE:
        raise Refused(
            409,
            "connection_inactive",
            f"The connection is {connection.status_in_words} on this side: keep the event "
            "and send it again once it is active.",
        )


def receive_event(connection: Connection, body: Any, *, wake: bool = True) -> dict:
    """Store one event of the other side once; the answer for the 202.

    Raises Refused for a bad body (400), an inactive connection (409
    connection_inactive), the same uuid with another body (409 event_conflict) and an
    unexalated twin (410 twin_unexalated).
    """
    _check_protocol(body)
    data = SyncEventSerializer(data=body)
    if not data.is_valid():
        raise Refused(400, "invalid_request", "The event is not valid: see errors.", data.errors)
    _check_active(connection)
    event = data.validated_data
    digest = digest_of(body)
    try:
        with transaction.atomic():
            return _store(connection, event, digest, wake)
    except IntegrityError:
        # The same event (or the first event of the same twin) stored by a concurrent call.
        with transaction.atomic():
            return _store(connection, event, digest, wake)


def _store(connection: Connection, event: dict, digest: str, wake: bool = True) -> dict:
    existing = InboundEvent.objects.filter(connection=connection, uuid=event["event"]).first()
    if existing is not None:
        if existing.body_digest != digest:
            raise Refused(
                409,
                "event_conflict",
                "An event with this uuid but another body was received before.",
            )
        return existing.answer()
    twin = (
        Twin.objects.select_for_update()
        .filter(connection=connection, twin_id=event["twin_id"])
        .first()
    )
    action = event["action"]
    if twin is not None and twin.status == TwinStatus.CLOSED and action != EventAction.UNEXALATE:
        raise Refused(
            410,
            "twin_unexalated",
            "This request was unexalated on this side: close the twin.",
        )
    if twin is None:
        # Stored before its request exists, so a retried create finds its sourceID.
        twin = Twin.objects.create(
            connection=connection,
            twin_id=event["twin_id"],
            origin=TwinOrigin.REMOTE,
            status=TwinStatus.CREATING,
            remote_request_id=event["twin"],
        )
    elif event["twin"] and twin.remote_request_id != event["twin"]:
        Twin.objects.filter(pk=twin.pk).update(remote_request_id=event["twin"])
    stale = event["seq"] <= twin.last_seq_applied or twin.status == TwinStatus.CLOSED
    inbound = InboundEvent.objects.create(
        connection=connection,
        uuid=event["event"],
        twin=twin,
        seq=event["seq"],
        action=action,
        sender_request_id=event["twin"],
        replica=event.get("replica"),
        previous=event.get("previous") if isinstance(event.get("previous"), dict) else None,
        body_digest=digest,
        state=InboundState.SUPERSEDED if stale else InboundState.QUEUED,
        request_id=str(twin.local_request_id or ""),
        finished_at=timezone.now() if stale else None,
    )
    if not stale and wake:
        wake_workers()
    return inbound.answer()


# --- batches: several events (or results) in one call ---------------------------------------


def is_batch(body: Any, key: str) -> bool:
    """A batch body carries its items under `key` ("events" or "results")."""
    return isinstance(body, dict) and key in body


def _batch_items(body: dict, key: str) -> list:
    _check_protocol(body)
    items = body.get(key)
    if not isinstance(items, list) or not 1 <= len(items) <= BATCH_MAX:
        raise Refused(
            400,
            "invalid_request",
            f"{key!r} must be a list of 1 to {BATCH_MAX} items.",
            {key: [f"A list of 1 to {BATCH_MAX} items."]},
        )
    return items


def _item_refusal(item: Any, exc: Refused) -> dict:
    result: dict = {"status": exc.status, "code": exc.code, "detail": exc.detail}
    if isinstance(item, dict) and isinstance(item.get("event"), str):
        result["event"] = item["event"][:64]
    if exc.errors:
        result["errors"] = exc.errors
    return result


def receive_events(connection: Connection, body: Any) -> dict:
    """A batch of events, `{"protocol": 1, "events": [body, ...]}`, each the body of a
    single `POST …/sync/`, stored one after the other in their order (so the events of a
    twin keep theirs), each once and in its own transaction, as if sent alone. Returns
    `{"results": [...]}` in the same order: each the single call's answer with its HTTP
    `status` (202), or its refusal (`status`, `code`, `detail`)."""
    items = _batch_items(body, "events")
    _check_active(connection)
    results: list[dict] = [{} for _ in items]
    # One transaction (and one commit) for the batch, each event in a savepoint of its
    # own. The events are taken in the order of their twins' ids (a stable sort: a twin's
    # own events keep theirs), so two batches sharing twins (a sender's retry of a slow
    # one) take their locks in the same order and never wait for each other in a circle.
    order = sorted(range(len(items)), key=lambda index: _twin_of(items[index]))
    with transaction.atomic():
        for index in order:
            try:
                answer = receive_event(connection, items[index], wake=False)
                results[index] = {"status": 202, **answer}
            except Refused as exc:
                results[index] = _item_refusal(items[index], exc)
        if any(result.get("state") == "queued" for result in results):
            wake_workers()  # once for the batch
    return {"results": results}


def _twin_of(item: Any) -> str:
    return str(item.get("twin_id")) if isinstance(item, dict) else ""


def receive_results(connection: Connection, body: Any) -> dict:
    """A batch of results, `{"protocol": 1, "results": [body, ...]}`, each the body of a
    single `POST …/sync/ack/`. Returns `{"results": [...]}` in the same order: each
    `{"status": 200, "event", "state"}` or the single call's refusal."""
    items = _batch_items(body, "results")
    results: list[dict] = [{} for _ in items]
    # One commit for the batch, each result in a savepoint; taken in the order of their
    # events' uuids, so two batches sharing events lock them in the same order.
    order = sorted(range(len(items)), key=lambda index: _event_of(items[index]))
    with transaction.atomic():
        for index in order:
            try:
                with transaction.atomic():
                    results[index] = {"status": 200, **receive_result(connection, items[index])}
            except Refused as exc:
                results[index] = _item_refusal(items[index], exc)
    return {"results": results}


def _event_of(item: Any) -> str:
    return str(item.get("event")) if isinstance(item, dict) else ""


# --- results of this side's events ---------------------------------------------------------


def receive_result(connection: Connection, body: Any) -> dict:
    """The other side's result for one of this side's events (the ack, or a 202 answer
    that already carries a final state). Returns {"event", "state"} as now recorded."""
    if isinstance(body, dict) and "protocol" in body:
        _check_protocol(body)
    data = SyncAnswerSerializer(data=body)
    if not data.is_valid():
        raise Refused(400, "invalid_request", "The result is not valid: see errors.", data.errors)
    result = data.validated_data
    event = (
        SyncEvent.objects.select_related("twin")
        .filter(connection=connection, uuid=result["event"])
        .first()
    )
    if event is None:
        raise Refused(404, "event_not_found", "This node sent no event with this uuid.")
    state = record_result(event, result)
    return {"event": str(event.uuid), "state": state}


def mark_sent(event_ids: list[int]) -> None:
    """The other side stored these events (answered "queued"): sent, waiting for the ack.
    One statement, and only for events no ack has settled meanwhile."""
    if event_ids:
        SyncEvent.objects.filter(
            pk__in=event_ids, state__in=(EventState.QUEUED, EventState.IN_PROGRESS)
        ).update(state=EventState.SENT, sent_at=timezone.now(), lease_until=None, lease_token=None)


def record_result(event: SyncEvent, result: dict) -> str:
    """Take in what the other side made of an event: link the twin, settle the event,
    and show the other side's error (read-only: it is retried there). Returns the
    event's state now."""
    state = result["state"]
    if state == "queued":
        mark_sent([event.pk])
        return SyncEvent.objects.filter(pk=event.pk).values_list("state", flat=True).first() or ""
    now = timezone.now()
    with transaction.atomic():
        locked = SyncEvent.objects.select_for_update().select_related("twin").get(pk=event.pk)
        # A failure can still turn into success (Retry there); a success stays one.
        if locked.state in (EventState.APPLIED, EventState.SUPERSEDED):
            return locked.state
        _settle(locked, state, finished_at=now, error=result.get("error") or "")
        request_id = result.get("request_id") or ""
        twin = locked.twin
        changes: dict = {}
        if request_id and twin.remote_request_id != request_id:
            changes["remote_request_id"] = request_id
        if state == EventState.APPLIED:
            changes["synced_at"] = now
        if changes:
            Twin.objects.filter(pk=twin.pk).update(**changes)
        if state == EventState.APPLIED:
            twin.errors.unresolved().filter(remote=True).update(
                resolved_at=now, resolution="Applied on the other side."
            )
    if state == EventState.FAILED:
        record_error(
            connection=event.connection,
            twin=event.twin,
            event_uuid=event.uuid,
            place=ErrorPlace.REMOTE,
            kind=ErrorKind.PEER,
            message=result.get("error") or "The other side could not apply this change.",
            line=result.get("line"),
            remote=True,
        )
    return state


def _settle(event: SyncEvent, state: str, *, error: str = "", **times) -> None:
    values = {"state": state, "lease_until": None, "lease_token": None, **times}
    if error:
        values["last_error"] = error[:5000]
    SyncEvent.objects.filter(pk=event.pk).update(**values)
