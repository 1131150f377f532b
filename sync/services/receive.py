"""The receiving side of the protocol: storing the other side's events (never applying
them inside the call: a request never waits on Xurrent), and taking in the results of
this side's events."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.db import connections as db_connections
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
    SyncError,
    SyncEvent,
    Twin,
    TwinOrigin,
    TwinStatus,
)
from sync.models.rows import update_rows
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
    event = _valid_event(body)
    _check_active(connection)
    digest = digest_of(body)
    try:
        with transaction.atomic():
            return _store(connection, event, digest, wake)
    except IntegrityError:
        # The same event (or the first event of the same twin) stored by a concurrent call.
        with transaction.atomic():
            return _store(connection, event, digest, wake)


def _answer_again(existing: InboundEvent, digest: str) -> dict:
    """An event stored before: the same answer again for the same body; 409 for another
    body under the same uuid."""
    if existing.body_digest != digest:
        raise Refused(
            409,
            "event_conflict",
            "An event with this uuid but another body was received before.",
        )
    return existing.answer()


def _store(connection: Connection, event: dict, digest: str, wake: bool = True) -> dict:
    existing = InboundEvent.objects.filter(connection=connection, uuid=event["event"]).first()
    if existing is not None:
        return _answer_again(existing, digest)
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
    single `POST …/sync/`, stored in their order (so the events of a twin keep theirs),
    each once, as if sent alone. Returns `{"results": [...]}` in the same order: each the
    single call's answer with its HTTP `status` (202), or its refusal (`status`, `code`,
    `detail`).

    One transaction for the batch and a few statements, not a few per event. The twins
    are locked in the order of their ids, so two batches sharing twins (a sender's retry
    of a slow one) never wait for each other in a circle. A concurrent call that stored
    one of the events (or made one of the twins) first: the batch is stored again one
    event at a time, each finding what that call stored."""
    items = _batch_items(body, "events")
    _check_active(connection)
    try:
        with transaction.atomic():
            results = _store_batch(connection, items)
            _wake_for(results)
    except IntegrityError:
        with transaction.atomic():
            results = _store_one_by_one(connection, items)
            _wake_for(results)
    return {"results": results}


def _wake_for(results: list[dict]) -> None:
    if any(result.get("state") == "queued" for result in results):
        wake_workers()  # once for the batch


def _store_batch(connection: Connection, items: list) -> list[dict]:
    results: list[dict] = [{} for _ in items]
    valid: dict[int, tuple[dict, str]] = {}
    for index, item in enumerate(items):
        try:
            valid[index] = (_valid_event(item), digest_of(item))
        except Refused as exc:
            results[index] = _item_refusal(item, exc)
    events = [event for event, _ in valid.values()]
    stored = {
        inbound.uuid: inbound
        for inbound in InboundEvent.objects.filter(
            connection=connection, uuid__in=[event["event"] for event in events]
        )
    }
    twins = {
        twin.twin_id: twin
        for twin in Twin.objects.select_for_update()
        .filter(connection=connection, twin_id__in=[event["twin_id"] for event in events])
        .order_by("twin_id")
    }
    batch = _Stored(connection, stored, twins)
    for index in sorted(valid, key=lambda i: _twin_of(items[i])):
        event, digest = valid[index]
        try:
            results[index] = {"status": 202, **batch.take(event, digest)}
        except Refused as exc:
            results[index] = _item_refusal(items[index], exc)
    batch.write()
    return results


def _store_one_by_one(connection: Connection, items: list) -> list[dict]:
    """Each event in a savepoint of its own, in the order of their twins' ids."""
    results: list[dict] = [{} for _ in items]
    for index in sorted(range(len(items)), key=lambda index: _twin_of(items[index])):
        try:
            answer = receive_event(connection, items[index], wake=False)
            results[index] = {"status": 202, **answer}
        except Refused as exc:
            results[index] = _item_refusal(items[index], exc)
    return results


def _valid_event(body: Any) -> dict:
    _check_protocol(body)
    return _validated(body, plain_event, SyncEventSerializer, "event")


def _validated(body: Any, plain: Callable[[Any], dict | None], serializer, what: str) -> dict:
    """The validated data of `body`: a body in the plain shape every node sends is taken
    by `plain` (to the same data), any other is checked by the serializer."""
    taken = plain(body)
    if taken is not None:
        return taken
    data = serializer(data=body)
    if not data.is_valid():
        raise Refused(400, "invalid_request", f"The {what} is not valid: see errors.", data.errors)
    return data.validated_data


class _Stored:
    """Events of a batch taken one by one (as `_store` takes one) against the events
    stored before and the locked twins, then written in a few statements."""

    def __init__(self, connection: Connection, stored: dict, twins: dict) -> None:
        self.connection = connection
        self.stored = stored  # uuid → InboundEvent, stored before or in this batch
        self.twins = twins  # twin_id → Twin, locked or new in this batch
        self.new_twins: list[Twin] = []
        self.relinked: dict[int, Twin] = {}
        self.new_events: list[InboundEvent] = []
        self.now = timezone.now()

    def take(self, event: dict, digest: str) -> dict:
        existing = self.stored.get(event["event"])
        if existing is not None:
            return _answer_again(existing, digest)
        twin = self._twin(event)
        stale = event["seq"] <= twin.last_seq_applied or twin.status == TwinStatus.CLOSED
        inbound = InboundEvent(
            connection=self.connection,
            uuid=event["event"],
            twin=twin,
            seq=event["seq"],
            action=event["action"],
            sender_request_id=event["twin"],
            replica=event.get("replica"),
            previous=event.get("previous") if isinstance(event.get("previous"), dict) else None,
            body_digest=digest,
            state=InboundState.SUPERSEDED if stale else InboundState.QUEUED,
            request_id=str(twin.local_request_id or ""),
            finished_at=self.now if stale else None,
        )
        self.stored[inbound.uuid] = inbound
        self.new_events.append(inbound)
        return inbound.answer()

    def _twin(self, event: dict) -> Twin:
        twin = self.twins.get(event["twin_id"])
        closed = twin is not None and twin.status == TwinStatus.CLOSED
        if closed and event["action"] != EventAction.UNEXALATE:
            raise Refused(
                410,
                "twin_unexalated",
                "This request was unexalated on this side: close the twin.",
            )
        if twin is None:
            # Stored before its request exists, so a retried create finds its sourceID.
            twin = Twin(
                connection=self.connection,
                twin_id=event["twin_id"],
                origin=TwinOrigin.REMOTE,
                status=TwinStatus.CREATING,
                remote_request_id=event["twin"],
            )
            self.twins[twin.twin_id] = twin
            self.new_twins.append(twin)
        elif event["twin"] and twin.remote_request_id != event["twin"]:
            twin.remote_request_id = event["twin"]
            if twin.pk is not None:
                self.relinked[twin.pk] = twin
        return twin

    def write(self) -> None:
        if self.new_twins:
            Twin.objects.bulk_create(self.new_twins)
        update_rows(sorted(self.relinked.values(), key=lambda t: t.pk), ["remote_request_id"])
        for inbound in self.new_events:
            inbound.twin_id = inbound.twin.pk  # new twins have their ids now
        if self.new_events:
            InboundEvent.objects.bulk_create(self.new_events)


def _twin_of(item: Any) -> str:
    return str(item.get("twin_id")) if isinstance(item, dict) else ""


def receive_results(connection: Connection, body: Any) -> dict:
    """A batch of results, `{"protocol": 1, "results": [body, ...]}`, each the body of a
    single `POST …/sync/ack/`. Returns `{"results": [...]}` in the same order: each
    `{"status": 200, "event", "state"}` or the single call's refusal.

    One transaction for the batch and a few statements, not a few per result: the
    events are locked together (in the order of their uuids, so two batches sharing
    events lock them in the same order), each result is taken as `record_result` takes
    it, and the events, the twins and their errors are written together."""
    items = _batch_items(body, "results")
    results: list[dict] = [{} for _ in items]
    valid: dict[int, dict] = {}
    for index, item in enumerate(items):
        try:
            valid[index] = _valid_result(item)
        except Refused as exc:
            results[index] = _item_refusal(item, exc)
    with transaction.atomic():
        events = _locked_events(connection, {result["event"] for result in valid.values()})
        batch = _Results()
        for index in sorted(valid, key=lambda i: str(valid[i]["event"])):
            event = events.get(valid[index]["event"])
            if event is None:
                refusal = Refused(404, "event_not_found", "This node sent no event with this uuid.")
                results[index] = _item_refusal(items[index], refusal)
                continue
            state = batch.take(event, valid[index])
            results[index] = {"status": 200, "event": str(event.uuid), "state": state}
        batch.write()
    return {"results": results}


def _valid_result(body: Any) -> dict:
    if isinstance(body, dict) and "protocol" in body:
        _check_protocol(body)
    return _validated(body, plain_result, SyncAnswerSerializer, "result")


def _locked_events(connection: Connection, uuids: set) -> dict:
    """This side's events with these uuids, locked (not their twins), by uuid."""
    if not uuids:
        return {}
    events = SyncEvent.objects.filter(connection=connection, uuid__in=uuids).order_by("uuid")
    features = db_connections[events.db].features
    of = ("self",) if features.has_select_for_update_of else ()
    events = events.select_for_update(of=of).select_related("twin", "connection")
    return {event.uuid: event for event in events}


class _Results:
    """Results of a batch taken one by one (as `record_result` takes one) on locked
    events, then written in a few statements."""

    def __init__(self) -> None:
        self.now = timezone.now()
        self.events: dict[int, SyncEvent] = {}
        self.linked: dict[int, Twin] = {}  # twins that learn their remote request id
        self.applied: set[int] = set()  # twins whose event was applied there
        self.failed: list[tuple[SyncEvent, dict]] = []

    def take(self, event: SyncEvent, result: dict) -> str:
        state = result["state"]
        if state == "queued":
            if event.state in (EventState.QUEUED, EventState.IN_PROGRESS):
                event.state, event.sent_at = EventState.SENT, self.now
                event.lease_until = event.lease_token = None
                self.events[event.pk] = event
            return event.state
        # A failure can still turn into success (Retry there); a success stays one.
        if event.state in (EventState.APPLIED, EventState.SUPERSEDED):
            return event.state
        event.state, event.finished_at = state, self.now
        event.lease_until = event.lease_token = None
        if result.get("error"):
            event.last_error = result["error"][:5000]
        self.events[event.pk] = event
        request_id = result.get("request_id") or ""
        if request_id and event.twin.remote_request_id != request_id:
            event.twin.remote_request_id = request_id
            self.linked[event.twin_id] = event.twin
        if state == EventState.APPLIED:
            self.applied.add(event.twin_id)
        if state == EventState.FAILED:
            self.failed.append((event, result))
        return state

    def write(self) -> None:
        events = sorted(self.events.values(), key=lambda event: event.pk)
        fields = ["state", "sent_at", "finished_at", "lease_until", "lease_token", "last_error"]
        update_rows(events, fields)
        update_rows(sorted(self.linked.values(), key=lambda t: t.pk), ["remote_request_id"])
        if self.applied:
            Twin.objects.filter(pk__in=sorted(self.applied)).update(synced_at=self.now)
            SyncError.objects.unresolved().filter(twin_id__in=self.applied, remote=True).update(
                resolved_at=self.now, resolution="Applied on the other side."
            )
        for event, result in self.failed:
            show_remote_failure(event, result)


def _event_of(item: Any) -> str:
    return str(item.get("event")) if isinstance(item, dict) else ""


# --- results of this side's events ---------------------------------------------------------


def receive_result(connection: Connection, body: Any) -> dict:
    """The other side's result for one of this side's events (the ack, or a 202 answer
    that already carries a final state). Returns {"event", "state"} as now recorded."""
    result = _valid_result(body)
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
        show_remote_failure(event, result)
    return state


def show_remote_failure(event: SyncEvent, result: dict) -> None:
    """The other side could not apply `event`: its error, shown here read-only (it is
    fixed and retried there)."""
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


def _settle(event: SyncEvent, state: str, *, error: str = "", **times) -> None:
    values = {"state": state, "lease_until": None, "lease_token": None, **times}
    if error:
        values["last_error"] = error[:5000]
    SyncEvent.objects.filter(pk=event.pk).update(**values)


# --- the common shape, checked without a serializer ---------------------------------------------

# What DRF's serializers do for a field costs more than the rest of storing an event; a
# body in the plain shape every node sends is checked here instead, to the same result.
# Anything else goes to the serializer, which says what is wrong.
RESULT_STATES = ("queued", "applied", "superseded", "failed")


def plain_event(body: dict) -> dict | None:
    """SyncEventSerializer's validated data for a plain event body, or None."""
    action = body.get("action", EventAction.UPDATE)
    twin, seq, replica = body.get("twin"), body.get("seq"), body.get("replica")
    if type(body.get("protocol")) is not int or not _plain_text(twin, 64):
        return None
    if type(seq) is not int or seq < 1 or action not in EventAction.values:
        return None
    if action == EventAction.UPDATE and not isinstance(replica, dict):
        return None
    event, twin_id = _plain_uuid(body.get("event")), _plain_uuid(body.get("twin_id"))
    if event is None or twin_id is None:
        return None
    return {
        "protocol": body["protocol"],
        "event": event,
        "twin": twin,
        "twin_id": twin_id,
        "seq": seq,
        "action": action,
        "replica": replica,
        "previous": body.get("previous"),
    }


def plain_result(body: Any) -> dict | None:
    """SyncAnswerSerializer's validated data for a plain result body, or None."""
    if not isinstance(body, dict):
        return None
    protocol, state = body.get("protocol", PROTOCOL), body.get("state")
    event = _plain_uuid(body.get("event"))
    if type(protocol) is not int or state not in RESULT_STATES or event is None:
        return None
    result = {"protocol": protocol, "event": event, "state": state}
    for name, longest in (("request_id", 64), ("error", 5000)):
        if name in body:
            if not _plain_text(body[name], longest):
                return None
            result[name] = body[name]
    if "line" in body:
        if body["line"] is not None and type(body["line"]) is not int:
            return None
        result["line"] = body["line"]
    return result


def _plain_text(value: Any, longest: int) -> bool:
    """A string a CharField keeps as it is (no surrounding blanks to trim, no NUL)."""
    return (
        isinstance(value, str)
        and len(value) <= longest
        and value == value.strip()
        and "\x00" not in value
    )


def _plain_uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(hex=value)
    except ValueError:
        return None
