"""Running a connection's sync rules on real requests (the sandbox does the running)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from connections.models import Connection
from nodes.models import GeneralSettings, Mode
from sync.defaults import BASIC_OUTGOING, basic_incoming
from sync.entity import entity_from_request
from sync.models import NoteMap, Twin
from sync.sandbox import Outcome, Problem, run_incoming, run_outgoing
from sync.services.gateway import RequestState
from sync.services.rules import get_current_rules


@dataclass(frozen=True)
class Rules:
    outgoing: str
    incoming: str


def rules_for(connection: Connection, cache: dict | None = None) -> Rules:
    """The scripts in force on this side: Basic mode's fixed ones, or the latest version.
    A batch of work passes a `cache` (a dict) to read them once per connection."""
    if cache is not None and connection.pk in cache:
        return cache[connection.pk]
    if connection.mode == Mode.BASIC:
        rules = Rules(BASIC_OUTGOING, basic_incoming(GeneralSettings.load().basic_team))
    else:
        current = get_current_rules(connection)
        rules = Rules(current.outgoing, current.incoming)
    if cache is not None:
        cache[connection.pk] = rules
    return rules


def rules_of(twins: list[Twin]) -> dict:
    """The cache `rules_for` takes, filled for these twins' connections: read before a
    batch's threads start, not by each thread that finds it empty."""
    cache: dict = {}
    for twin in twins:
        rules_for(twin.connection, cache)
    return cache


class ScriptFailed(Exception):
    """A sync rule script failed on a real request; `problem` says where and why."""

    def __init__(self, direction: str, problem: Problem):
        super().__init__(f"The {direction} script failed: {problem}")
        self.direction = direction
        self.problem = problem


def remote_key(note_id: Any) -> str:
    """A note id of the other side as stored in a note map: its JSON, so that 12 and "12"
    (a Xurrent id and a Jira one) stay apart and come back as they were."""
    return json.dumps(note_id, sort_keys=True)


def remote_value(key: str) -> Any:
    try:
        return json.loads(key)
    except ValueError:
        return key


def notes_with_remote_ids(
    twin: Twin | None, notes: list[dict], mapped: dict[int, str] | None = None
) -> list[dict]:
    """The notes, each copy of (or copied to) the other side marked with its id there.
    `mapped`: the twin's note map (local id → remote id) when the caller read it already."""
    if twin is None or twin.pk is None or not notes:
        return notes
    if mapped is None:
        mapped = dict(
            NoteMap.objects.filter(twin=twin, local_note_id__isnull=False).values_list(
                "local_note_id", "remote_note_id"
            )
        )
    marked = []
    for note in notes:
        key = mapped.get(note.get("id")) if isinstance(note.get("id"), int) else None
        marked.append({**note, "remote_id": remote_value(key)} if key is not None else note)
    return marked


def request_for_scripts(
    twin: Twin | None, state: RequestState, mapped: dict[int, str] | None = None
) -> dict[str, Any]:
    return {**state.request, "notes": notes_with_remote_ids(twin, state.notes, mapped)}


def note_maps_of(twins: list[Twin]) -> dict[int, dict[int, str]]:
    """The note maps of these twins (per twin: local note id → remote id), in one query:
    what `notes_with_remote_ids` reads for each."""
    maps: dict[int, dict[int, str]] = {twin.pk: {} for twin in twins}
    rows = NoteMap.objects.filter(twin__in=twins, local_note_id__isnull=False).values_list(
        "twin_id", "local_note_id", "remote_note_id"
    )
    for twin_pk, local_id, remote_id in rows:
        maps[twin_pk][local_id] = remote_id
    return maps


def outgoing_replica(
    rules: Rules, twin: Twin | None, state: RequestState, mapped: dict[int, str] | None = None
) -> dict[str, Any]:
    """The replica of a local request; ScriptFailed when the outgoing script fails.
    `mapped`: the twin's note map, when read already (`note_maps_of`)."""
    outcome = run_outgoing(rules.outgoing, request_for_scripts(twin, state, mapped))
    return _result(outcome, "outgoing")


@dataclass
class Incoming:
    """What applying a replica does to the local request (Exalate's entity view)."""

    before: dict[str, Any]
    after: dict[str, Any]
    conflicts: list[str]
    kept: str = ""  # whose value a conflicting field kept: "this side" / "the other side"


def incoming_entity(
    rules: Rules,
    twin: Twin,
    replica: dict[str, Any],
    state: RequestState | None,
    *,
    previous: dict[str, Any] | None,
    source_wins_here: bool,
) -> Incoming:
    """Apply `replica` to the local request with the incoming script; `state` is None on
    the first sync. ScriptFailed when the script fails.

    Only what the other side changed since `previous` (the replica this side last
    applied) is taken: the script runs on `previous` too, and an entity field comes out
    the same both ways is left as this side has it, so an edit made here meanwhile is
    not undone by a replica that simply had not seen it yet. A field both sides changed
    keeps the source side's value (the connection's initiator), on both sides.
    """
    request = request_for_scripts(twin, state) if state is not None else None
    outcome = run_incoming(rules.incoming, replica, request, previous=previous or {})
    after = _result(outcome, "incoming")
    if request is None:
        return Incoming({}, after, [])
    before = dict(outcome.before or {})
    if not previous:
        return Incoming(before, after, [])
    base = _result(run_incoming(rules.incoming, previous, request, previous=previous), "incoming")
    merged = dict(before)
    conflicts: list[str] = []
    for name in set(after) | set(base):
        theirs, common, ours = after.get(name), base.get(name), before.get(name)
        if theirs == common:
            continue  # the other side did not change what this field comes from
        if isinstance(theirs, list) or ours in (common, theirs):
            merged[name] = theirs  # lists are merged by the script; no local change
            continue
        conflicts.append(name)
        merged[name] = ours if source_wins_here else theirs
    kept = "this side" if source_wins_here else "the other side"
    return Incoming(before, merged, sorted(conflicts), kept if conflicts else "")


def entity_of(twin: Twin | None, state: RequestState) -> dict[str, Any]:
    return json.loads(json.dumps(entity_from_request(request_for_scripts(twin, state))))


def _result(outcome: Outcome, direction: str) -> dict[str, Any]:
    if not outcome.ok or outcome.result is None:
        problem = outcome.problems[0] if outcome.problems else Problem(None, "The script failed.")
        raise ScriptFailed(direction, problem)
    return outcome.result
