"""Applying the other side's events to this side's Xurrent (the receiver's worker).

Per twin, the newest queued event above the last one applied is applied and the older
ones are superseded (each event carries the full state). The incoming script turns the
replica into the local request; the changes go to Xurrent (marked as this node's own
writes); new comments become notes through the twin's note map, so a note is never
added twice. The twin's baseline then becomes the outgoing replica of what Xurrent
answered, so the webhook for this very write finds nothing to send back.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from connections.models import Role, Status
from nodes.models import Mode
from nodes.wakeup import wake_workers
from sync.entity import TEAM_NEEDED
from sync.models import (
    ErrorKind,
    ErrorPlace,
    EventAction,
    InboundEvent,
    InboundState,
    NoteMap,
    NoteOrigin,
    PollState,
    Twin,
    TwinStatus,
)
from sync.models.claims import claim
from sync.models.rows import update_rows
from sync.sandbox import Problem
from sync.services.errors import record_error, resolve_errors, twins_with_open_errors
from sync.services.gateway import (
    BudgetWait,
    Gateway,
    GatewayError,
    Purpose,
    RequestState,
    answered_at,
    first_page,
    get_gateway,
    read_request,
)
from sync.services.parallel import for_each
from sync.services.references import UnknownReference, assignment_line, reference_id
from sync.services.scope import close_twin
from sync.services.scripts import (
    Rules,
    ScriptFailed,
    incoming_entity,
    note_maps_of,
    outgoing_replica,
    remote_key,
    rules_for,
    rules_of,
)
from xurrent.services import request_digest

logger = logging.getLogger(__name__)

BASIC_TEAM_ADVICE = (
    "Basic mode creates the requests that come from the other side in the team set in this "
    "node's Xurrent settings (Team for new requests): set it to one of this account's "
    "teams, by name or id, then press Retry."
)

# Exalate's fields of a request and the Xurrent fields they are written to.
PLAIN_FIELDS = {
    "summary": "subject",
    "status": "status",
    "priority": "impact",
    "resolution": "completion_reason",
    "category": "category",
}
REFERENCE_FIELDS = {
    "team": "team_id",
    "service": "service_instance_id",
    "assignee": "member_id",
    "requested_by": "requested_by_id",
    "reporter": "requested_by_id",
}


@dataclass
class ApplyReport:
    applied: int = 0
    superseded: int = 0
    failed: int = 0
    retrying: int = 0

    @property
    def attempted(self) -> int:
        return self.applied + self.failed + self.retrying


def apply_inbound(
    *, limit: int = 10, gateway: Gateway | None = None, connection=None
) -> ApplyReport:
    """Take up to `limit` twins (of one connection, or all) with events waiting and apply
    the newest of each."""
    report = ApplyReport()
    now = timezone.now()
    waiting = InboundEvent.objects.filter(
        twin=OuterRef("pk"), state=InboundState.QUEUED, next_try_at__lte=now
    )
    due = (
        Twin.objects.unleased(now)
        .filter(
            status__in=(TwinStatus.CREATING, TwinStatus.OPEN),
            connection__status=Status.ACTIVE,
        )
        .filter(Exists(waiting))
        .select_related("connection")
    )
    if connection is not None:
        due = due.filter(connection=connection)
    twins = claim(
        due,
        limit,
        Twin.LEASE,
        order_by=("id",),
        related=("connection",),
    )
    if not twins:
        return report
    rules = rules_of(twins)
    troubled = twins_with_open_errors(twins)
    queued = _queued_events(twins)
    note_maps = note_maps_of(twins)
    recorded = _record_creates(twins)
    # The twins written to Xurrent are settled together afterwards (one transaction).
    finishing: list[Finished] = []

    def one(twin: Twin) -> ApplyReport:
        alone = ApplyReport()
        # A client per thread (one call at a time each); a test's gateway is shared.
        client = gateway or get_gateway(Purpose.INCOMING)
        apply_twin(
            twin,
            client,
            alone,
            rules=rules,
            troubled=twin.pk in troubled,
            queued=queued[twin.pk],
            finishing=finishing,
            create_recorded=twin.pk in recorded,
            mapped=note_maps[twin.pk],
        )
        return alone

    for alone in for_each(one, twins):
        for name in ("applied", "superseded", "failed", "retrying"):
            setattr(report, name, getattr(report, name) + getattr(alone, name))
    finish_together(finishing)
    return report


def _record_creates(twins: list[Twin]) -> set[int]:
    """Twins without a request will create one: that a create may have been sent is
    recorded (committed) before any is sent, so a later try looks for the request by its
    sourceID first; for the whole batch in one statement. Returns the twins recorded."""
    fresh = [t.pk for t in twins if t.local_request_id is None and not t.create_tried]
    if fresh:
        Twin.objects.filter(pk__in=fresh).update(create_tried=True)
    return set(fresh)


def _queued_events(twins: list[Twin]) -> dict[int, list[InboundEvent]]:
    """Per claimed twin, its queued events, newest first (one query for the batch)."""
    queued: dict[int, list[InboundEvent]] = {twin.pk: [] for twin in twins}
    events = InboundEvent.objects.filter(twin__in=twins, state=InboundState.QUEUED)
    for event in events.order_by("twin_id", "-seq"):
        queued[event.twin_id].append(event)
    return queued


def apply_twin(
    twin: Twin,
    gateway: Gateway,
    report: ApplyReport,
    *,
    rules: dict | None = None,
    troubled: bool = True,
    queued: list[InboundEvent] | None = None,
    finishing: list[Finished] | None = None,
    create_recorded: bool = False,
    mapped: dict[int, str] | None = None,
) -> None:
    """Apply the newest queued event of a claimed twin. `queued`: its queued events,
    newest first, when read already; `finishing`: where an applied update is put for
    `finish_together` instead of being settled here and now; `create_recorded`: this
    round recorded that it may create the twin's request (`_record_creates`); `mapped`:
    its note map as read for the batch (`note_maps_of`)."""
    if queued is None:
        queued = list(twin.inbound_events.filter(state=InboundState.QUEUED).order_by("-seq"))
    newest = queued[0] if queued else None
    stale = [e for e in queued if newest is None or e is not newest]
    if newest is not None and newest.seq <= twin.last_seq_applied:
        stale.append(newest)
        newest = None
    if stale:
        _settle(stale, InboundState.SUPERSEDED, request_id=twin.local_request_id)
        report.superseded += len(stale)
    if newest is None:
        _release(twin)
        return
    in_force = rules_for(twin.connection, rules)
    try:
        if newest.action == EventAction.UNEXALATE:
            _apply_unexalate(twin, newest)
        else:
            _apply_update(
                twin, newest, gateway, in_force, troubled, finishing, create_recorded, mapped
            )
    except ScriptFailed as exc:
        _fail(twin, newest, ErrorKind.SCRIPT, str(exc.problem), problem=exc.problem)
        report.failed += 1
        return
    except UnknownReference as exc:
        # A value the script set that this Xurrent account has no match for: the script
        # (or the account) needs fixing, as for a script error; the line is where it is set.
        if twin.connection.mode == Mode.BASIC:
            problem = Problem(None, f"{exc.fact} {BASIC_TEAM_ADVICE}")
        else:
            line, source_line = assignment_line(in_force.incoming, exc.field)
            problem = Problem(line, exc.message, source_line)
        _fail(twin, newest, ErrorKind.SCRIPT, str(problem), problem=problem)
        report.failed += 1
        return
    except GatewayError as exc:
        if exc.retryable:
            report.retrying += 1
            _retry_later(twin, newest, exc)
        else:
            report.failed += 1
            what = "is gone from" if exc.kind == "not_found" else "refused the change in"
            message = f"Request #{twin.local_request_id or '(new)'} {what} Xurrent: {exc.message}"
            _fail(twin, newest, ErrorKind.XURRENT, message)
        return
    report.applied += 1


# --- one update ---------------------------------------------------------------------------


def _apply_update(
    twin: Twin,
    inbound: InboundEvent,
    gateway: Gateway,
    rules: Rules,
    troubled: bool,
    finishing: list[Finished] | None = None,
    create_recorded: bool = False,
    mapped: dict[int, str] | None = None,
) -> None:
    replica = inbound.replica or {}
    local_id = twin.local_request_id
    if local_id is None and twin.create_tried and not create_recorded:
        local_id = _find_created(twin, gateway)
    state = read_request(gateway, local_id) if local_id else None
    linked = state is not None and _link_our_notes_they_copied(twin, replica, state)
    incoming = incoming_entity(
        rules,
        twin,
        replica,
        state,
        previous=twin.received or inbound.previous,
        source_wins_here=twin.connection.role == Role.SOURCE,
    )
    before, after = incoming.before, incoming.after
    if incoming.conflicts:
        _record_conflict(twin, incoming.conflicts, incoming.kept)
    fields = request_fields(
        before,
        after,
        first_sync=state is None,
        reference=lambda field, value: reference_id(field, value, gateway),
    )
    if state is None:
        _check_creatable(fields)
        post = _create(twin, after, fields, gateway, recorded=create_recorded)
        written = request_digest(post.request)
    else:
        request = gateway.update_request(local_id, fields) if fields else state.request
        post = RequestState(request, list(state.notes))
        written = request_digest(request) if fields else ""
        if after.get("description") and not before.get("description") and not state.notes:
            # No note yet: the description becomes the request's first note.
            post.notes.append(gateway.add_note(local_id, after["description"], internal=False))
    added, relinked = _add_new_comments(twin, post.id, after, post.notes, gateway)
    post.notes += added
    post.read_at = answered_at(gateway)
    # The note map read for the batch still holds unless this event wrote to it.
    mapped = None if linked or added or relinked else mapped
    baseline = _baseline_after_write(rules, twin, state, post, mapped)
    finished = Finished(twin, inbound, post, replica, baseline, troubled, written)
    if finishing is None:
        finish_together([finished])
    else:
        finishing.append(finished)  # list.append is atomic: the threads share the list


def _record_conflict(twin: Twin, fields: list[str], kept: str) -> None:
    with transaction.atomic():
        locked = Twin.objects.select_for_update().get(pk=twin.pk)
        locked.add_conflict(fields, kept)
        Twin.objects.filter(pk=twin.pk).update(conflicts=locked.conflicts)
    logger.info("Twin %s: both sides changed %s; kept %s", twin.pk, ", ".join(fields), kept)


def _find_created(twin: Twin, gateway: Gateway) -> int | None:
    """A create whose answer was lost: Xurrent knows the request by its sourceID."""
    page = first_page(gateway, {"sourceID": str(twin.twin_id)}, per_page=1)
    if not page.items:
        return None
    local_id = int(page.items[0]["id"])
    Twin.objects.filter(pk=twin.pk).update(local_request_id=local_id)
    twin.local_request_id = local_id
    return local_id


def _create(
    twin: Twin, after: dict, fields: dict, gateway: Gateway, *, recorded: bool = False
) -> RequestState:
    """Create the twin's request. That a create may have been sent is committed first
    (`recorded`: done for the batch already), so a later try of a create whose answer was
    lost finds the request by its sourceID rather than make a second one; the twin is
    linked to it with the rest of its new state (`finish_together`)."""
    fields = {**fields, "sourceID": str(twin.twin_id)}
    if after.get("description"):
        fields["note"] = after["description"]
    if not twin.create_tried and not recorded:
        Twin.objects.filter(pk=twin.pk).update(create_tried=True)
    twin.create_tried = True
    created = gateway.create_request(fields)
    local_id = int(created["id"])
    twin.local_request_id = local_id
    notes = list(gateway.list_notes(local_id)) if after.get("description") else []
    return RequestState(created, notes)


def request_fields(
    before: dict,
    after: dict,
    *,
    first_sync: bool,
    reference: Callable[[str, Any], int] | None = None,
) -> dict[str, Any]:
    """The Xurrent fields to write for what the incoming script changed (everything it
    set, on the first sync).

    References are written by id: `reference(field, value)` gives the id of what a value
    names (a team or person by name, or an id as it is) and raises UnknownReference for
    a name this account does not have; without it, only ids are accepted. A reference
    that names what the request already has is not written again.
    """
    fields: dict[str, Any] = {}
    for name, api_name in PLAIN_FIELDS.items():
        value = after.get(name)
        if (first_sync and value is not None) or (not first_sync and value != before.get(name)):
            fields[api_name] = value
    for name, api_name in REFERENCE_FIELDS.items():
        value, old = after.get(name), before.get(name)
        if not first_sync and (value == old or _same_name(value, old)):
            continue
        if value is None:
            if not first_sync:
                fields.setdefault(api_name, None)
            continue
        ref_id = (reference or _id_only)(name, value)
        if first_sync or not isinstance(old, dict) or old.get("id") != ref_id:
            fields[api_name] = ref_id
    custom = after.get("customFields")
    if isinstance(custom, dict) and custom and (first_sync or custom != before.get("customFields")):
        fields["custom_fields"] = [{"id": k, "value": v} for k, v in custom.items()]
    return fields


def _same_name(value: Any, old: Any) -> bool:
    """`entity.team = "Service Desk"` on a request whose team is that one already."""
    return isinstance(value, str) and isinstance(old, dict) and old.get("name") == value


def _id_only(field: str, value: Any) -> int:
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise UnknownReference(field, f"entity.{field} must be given by id here, not {value!r}.")


def _check_creatable(fields: dict[str, Any]) -> None:
    """Xurrent refuses a new request without a team (unless a service instance brings
    one): say so in the admin's words before asking it."""
    if not fields.get("team_id") and not fields.get("service_instance_id"):
        raise UnknownReference("team", TEAM_NEEDED)


# --- notes ----------------------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.strip().encode()).hexdigest()


def _link_our_notes_they_copied(twin: Twin, replica: dict, state: RequestState) -> bool:
    """A comment of the replica that is the other side's copy of one of our notes names
    it (`remote_id`): remember the pair, so neither side copies it again. Returns whether
    the map gained a pair."""
    linked = False
    ours = {n.get("id") for n in state.notes}
    for comment in replica.get("comments") or []:
        if not isinstance(comment, dict):
            continue
        local_id, their_id = comment.get("remote_id"), comment.get("id")
        if not isinstance(local_id, int) or local_id not in ours or their_id is None:
            continue
        key = remote_key(their_id)
        if NoteMap.objects.filter(twin=twin, remote_note_id=key).exists():
            continue
        if NoteMap.objects.filter(twin=twin, local_note_id=local_id).exists():
            continue
        try:
            with transaction.atomic():
                NoteMap.objects.create(
                    twin=twin, local_note_id=local_id, remote_note_id=key, origin=NoteOrigin.LOCAL
                )
        except IntegrityError:
            pass  # stored meanwhile by another: the map changed all the same
        linked = True
    return linked


def _add_new_comments(
    twin: Twin, local_id: int, after: dict, notes: list[dict], gateway: Gateway
) -> tuple[list[dict], bool]:
    """Add the comments the incoming script added (those without a local id) as notes.

    Each is recorded in the note map before the call; one recorded earlier whose answer
    was lost is looked for among the notes before it is written again. Returns the notes
    added and whether such an earlier one was found (and linked) instead.
    """
    relinked = False
    added: list[dict] = []
    linked: set[int] | None = None  # the twin's notes in its map, read when first needed
    for comment in after.get("comments") or []:
        if not isinstance(comment, dict) or comment.get("id") is not None:
            continue  # a note this side has already (edits are not sent: notes only grow)
        text = comment.get("body")
        if not isinstance(text, str) or not text.strip():
            continue
        their_id = comment.get("remote_id")
        key = remote_key(their_id) if their_id is not None else f"text:{_digest(text)}"
        internal = comment.get("internal") is True
        note_map = NoteMap.objects.filter(twin=twin, remote_note_id=key).first()
        if note_map is not None and note_map.local_note_id is not None:
            continue
        if note_map is None:
            note_map = NoteMap.objects.create(
                twin=twin,
                remote_note_id=key,
                origin=NoteOrigin.REMOTE,
                internal=internal,
                text_digest=_digest(text),
            )
        else:
            if linked is None:
                linked = _linked_notes(twin)
            found = _written_before(note_map, notes + added, linked)
            if found is not None:
                NoteMap.objects.filter(pk=note_map.pk).update(local_note_id=found)
                linked.add(found)
                relinked = True
                continue
        note = gateway.add_note(local_id, text, internal=internal)
        NoteMap.objects.filter(pk=note_map.pk).update(local_note_id=int(note["id"]))
        if linked is not None:
            linked.add(int(note["id"]))
        added.append(note)
    return added, relinked


def _linked_notes(twin: Twin) -> set[int]:
    return set(
        NoteMap.objects.filter(twin=twin, local_note_id__isnull=False).values_list(
            "local_note_id", flat=True
        )
    )


def _written_before(note_map: NoteMap, notes: list[dict], linked: set[int]) -> int | None:
    for note in notes:
        note_id = note.get("id")
        if note_id in linked or not isinstance(note.get("text"), str):
            continue
        if _digest(note["text"]) == note_map.text_digest:
            return int(note_id)
    return None


# --- the baseline: loops by content ------------------------------------------------------------


@dataclass
class Baseline:
    replica: dict | None  # the new baseline
    unsent: bool  # a change made on this side meanwhile is not in it: send it


def _baseline_after_write(
    rules: Rules,
    twin: Twin,
    before: RequestState | None,
    after: RequestState,
    mapped: dict[int, str] | None = None,
) -> Baseline:
    """The outgoing replica of what Xurrent answered to the write: the baseline.

    Fields this write did not change keep their old baseline, so a change made on this
    side in the meantime (not sent yet) still differs from it and is sent. `mapped`: the
    twin's note map as it is now, when known (else it is read).
    """
    try:
        post = outgoing_replica(rules, twin, after, mapped)
        if before is None or twin.baseline is None:
            return Baseline(post, unsent=False)
        pre = outgoing_replica(rules, twin, before, mapped)
    except ScriptFailed as exc:
        logger.warning("The outgoing script failed on twin %s after a write: %s", twin.pk, exc)
        return Baseline(twin.baseline, unsent=True)
    merged = merge_baseline(twin.baseline, pre, post)
    return Baseline(merged, unsent=merged != post)


def merge_baseline(old: dict, pre: dict, post: dict) -> dict:
    """`old` with what the write changed (`pre` → `post`); lists keep the old items and
    gain the items the write added."""
    merged = dict(old)
    for name in set(pre) | set(post):
        if pre.get(name) == post.get(name):
            continue
        before, after = pre.get(name), post.get(name)
        if isinstance(after, list) and isinstance(before, list):
            base = old.get(name) if isinstance(old.get(name), list) else []
            merged[name] = base + [item for item in after if item not in before]
        else:
            merged[name] = after
    return merged


# --- settling ----------------------------------------------------------------------------------


@dataclass
class Finished:
    """An event written to Xurrent, waiting to be settled (`finish_together`): its twin,
    the request as Xurrent answered the write, the replica applied, the new baseline,
    whether the twin may have open errors and the digest of what was written."""

    twin: Twin
    inbound: InboundEvent
    post: RequestState
    replica: dict
    baseline: Baseline
    troubled: bool = True
    written: str = ""


def finish_together(batch: list[Finished]) -> None:
    """The events are applied: each twin's new state, each event's result and its ack,
    in one transaction for the batch (the twins locked in the order of their ids, as
    every batch locks them). The request as written counts as read: the webhook and the
    poll that report this very write find nothing new (`written`: the digest of the
    request as Xurrent answered the write; their content shows it was this write)."""
    if not batch:
        return
    now = timezone.now()
    pks = [finished.twin.pk for finished in batch]
    with transaction.atomic():
        locked = {
            twin.pk: twin
            for twin in Twin.objects.select_for_update().filter(pk__in=pks).order_by("pk")
        }
        for finished in batch:
            _finish_twin(locked[finished.twin.pk], finished, now)
        update_rows([locked[pk] for pk in sorted(locked)], FINISHED_FIELDS)
        unsent = [finished.twin.pk for finished in batch if finished.baseline.unsent]
        if unsent:
            Twin.objects.filter(pk__in=unsent).mark_dirty()
        _settle_applied(batch, now)
        for finished in batch:
            if finished.troubled:
                resolve_errors(twin=finished.twin, place=ErrorPlace.APPLY)
        wake_workers()


FINISHED_FIELDS = [
    "local_request_id",
    "status",
    "received",
    "baseline",
    "last_seq_applied",
    "synced_at",
    "source_updated_at",
    "source_read_at",
    "written_digest",
    "attempts",
    "next_try_at",
    "lease_until",
    "lease_token",
]


def _finish_twin(twin: Twin, finished: Finished, now) -> None:
    """The locked twin's new state after `finished` (written by the caller)."""
    twin.local_request_id = finished.post.id
    if twin.status == TwinStatus.CREATING:
        twin.status = TwinStatus.OPEN
    twin.received = finished.replica
    twin.baseline = finished.baseline.replica
    twin.last_seq_applied = max(twin.last_seq_applied, finished.inbound.seq)
    twin.synced_at = now
    twin.source_updated_at = finished.post.updated_at
    twin.source_read_at = finished.post.read_at
    twin.written_digest = finished.written
    twin.attempts, twin.next_try_at, twin.lease_until, twin.lease_token = 0, None, None, None


def _settle_applied(batch: list[Finished], now) -> None:
    """The applied events' results, each with its request id, waiting for their acks."""
    events = []
    for finished in batch:
        event = finished.inbound
        event.state = InboundState.APPLIED
        event.request_id = str(finished.post.id or "")
        event.error = ""
        event.finished_at = now
        event.ack_pending = True
        event.ack_next_try_at = now
        events.append(event)
    update_rows(
        events, ["state", "request_id", "error", "finished_at", "ack_pending", "ack_next_try_at"]
    )


def _apply_unexalate(twin: Twin, inbound: InboundEvent) -> None:
    with transaction.atomic():
        locked = Twin.objects.select_for_update().get(pk=twin.pk)
        close_twin(locked, tell_peer=False)
        Twin.objects.filter(pk=twin.pk).update(
            last_seq_applied=max(locked.last_seq_applied, inbound.seq),
            lease_until=None,
            lease_token=None,
        )
        _settle([inbound], InboundState.APPLIED, request_id=twin.local_request_id)
        wake_workers()


def _settle(events: list[InboundEvent], state: str, *, request_id=None, error: str = "") -> None:
    InboundEvent.objects.filter(pk__in=[e.pk for e in events]).update(
        state=state,
        request_id=str(request_id or ""),
        error=error[:5000],
        finished_at=timezone.now(),
        ack_pending=True,
        ack_next_try_at=timezone.now(),
    )


def _release(twin: Twin) -> None:
    Twin.objects.filter(pk=twin.pk, lease_token=twin.lease_token).update(
        lease_until=None, lease_token=None
    )


def _fail(twin: Twin, inbound: InboundEvent, kind: str, message: str, problem=None) -> None:
    """The event cannot be applied until someone fixes the cause: hold the twin, and tell
    the sender (it shows the error; it is retried here)."""
    _release(twin)
    record_error(
        connection=twin.connection,
        twin=twin,
        event_uuid=inbound.uuid,
        place=ErrorPlace.APPLY,
        kind=kind,
        message=message,
        line=problem.line if problem else None,
        source_line=problem.source_line if problem else "",
        blocking=True,
    )
    _settle([inbound], InboundState.FAILED, request_id=twin.local_request_id, error=message)
    with transaction.atomic():
        wake_workers()


def _retry_later(twin: Twin, inbound: InboundEvent, exc: GatewayError) -> None:
    attempts = inbound.attempts + 1
    wait = min(timedelta(seconds=2) * 2 ** min(attempts - 1, 10), timedelta(minutes=30))
    next_try = timezone.now() + wait
    if exc.retry_at is not None:
        next_try = max(next_try, exc.retry_at)
        # Xurrent's own 429 stops every worker; this process's budget stops only itself.
        if exc.kind == "rate_limited" and not isinstance(exc, BudgetWait):
            PollState.pause_account(exc.retry_at)
    InboundEvent.objects.filter(pk=inbound.pk).update(
        attempts=F("attempts") + 1, next_try_at=next_try
    )
    _release(twin)
    error = record_error(
        connection=twin.connection,
        twin=twin,
        event_uuid=inbound.uuid,
        place=ErrorPlace.APPLY,
        kind=ErrorKind.NETWORK if exc.kind == "unreachable" else ErrorKind.XURRENT,
        message=f"Writing to Xurrent failed ({exc.kind}); tried again by itself: {exc.message}",
        next_try_at=next_try,
    )
    if error.blocking:
        _settle(
            [inbound], InboundState.FAILED, request_id=twin.local_request_id, error=error.message
        )
        with transaction.atomic():
            wake_workers()
