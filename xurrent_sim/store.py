"""The simulated account's data: requests, notes, teams and people, kept in memory.

Everything here is plain Python (no HTTP): the server turns query strings and JSON bodies
into calls on `Store`, and `Store` answers with dicts shaped as Xurrent shows them.
One lock guards all of it; every change is written to the data file (when there is one)
before the lock is let go, so a crash never leaves half a change on disk.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

CATEGORIES = (
    "incident",
    "rfc",
    "rfi",
    "reservation",
    "order",
    "fulfillment",
    "complaint",
    "compliment",
    "other",
)
IMPACTS = ("low", "medium", "high", "top")
STATUSES = (
    "declined",
    "on_backlog",
    "assigned",
    "accepted",
    "in_progress",
    "waiting_for",
    "waiting_for_customer",
    "reservation_pending",
    "workflow_pending",
    "project_pending",
    "completed",
)
COMPLETION_REASONS = (
    "solved",
    "workaround",
    "gone",
    "duplicate",
    "withdrawn",
    "no_reply",
    "rejected",
    "conflict",
    "declined",
    "unsolvable",
)
NOTE_MAX = 64 * 1024
DEFAULT_PER_PAGE = 20  # developer.4me.com/v1/general/pagination: "default page size of 20"
MAX_PER_PAGE = 100

# Seed data: the people and teams every fresh account starts with (ids are stable).
SEED_PEOPLE = [
    {"id": 1, "name": "Sam Owner", "primary_email": "sam.owner@example.com"},
    {"id": 2, "name": "Jo Agent", "primary_email": "jo.agent@example.com"},
    {"id": 3, "name": "Kim Specialist", "primary_email": "kim.specialist@example.com"},
    {"id": 4, "name": "Lee Customer", "primary_email": "lee.customer@example.com"},
    {"id": 5, "name": "Integration User", "primary_email": "integration@example.com"},
]
SEED_TEAMS = [
    {"id": 1, "name": "Service Desk", "members": [1, 2]},
    {"id": 2, "name": "Network", "members": [2, 3]},
    {"id": 3, "name": "Applications", "members": [3]},
]
OWNER_ID = 1  # the person behind the web page (a human)
TOKEN_PERSON_ID = 5  # the person behind the API token (an integration user)

REFERENCES = {  # field shown as {id, name} → the collection its id points into
    "team": "teams",
    "member": "people",
    "requested_by": "people",
    "requested_for": "people",
    "created_by": "people",
}
WRITABLE = {
    "subject",
    "category",
    "impact",
    "status",
    "completion_reason",
    "urgent",
    "team_id",
    "member_id",
    "requested_by_id",
    "requested_for_id",
    "source",
    "sourceID",
    "custom_fields",
    "desired_completion_at",
    "waiting_until",
    "note",
    "internal_note",
}
DATETIME_FIELDS = ("desired_completion_at", "waiting_until")


class ValidationFailed(Exception):
    """A write that Xurrent would refuse with 422; `errors` lists [field, message] pairs."""

    def __init__(self, errors: list[list[str]]):
        self.errors = errors
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [f"{field.replace('_', ' ').capitalize()} {text}" for field, text in self.errors]
        return "Validation Failed: " + ", ".join(parts)


class BadQuery(Exception):
    """A list query the simulator cannot answer (unknown filter field, bad value, bad sort)."""


class NotFound(Exception):
    pass


class Clock:
    """Wall time plus an offset that tests can move (`POST /_sim/clock`)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


def iso(ts: float | None) -> str | None:
    """Seconds since the epoch as Xurrent writes them: ISO 8601, to the second, UTC."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """An ISO 8601 date or date-time (offset or Z; no offset means UTC) → epoch seconds."""
    text = text.strip()
    if not text:
        raise ValueError("empty time")
    # An unencoded "+" in a query string arrives as a space: "10:00:00 02:00" meant +02:00.
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass
class Change:
    """What a write did, for the webhooks: one event per entry."""

    events: list[tuple[str, int, dict]] = field(default_factory=list)  # (event, object id, payload)


# ---------------------------------------------------------------- filters


@dataclass(frozen=True)
class FilterField:
    kind: str  # "int", "enum", "ref", "string", "time"
    column: str
    choices: tuple[str, ...] = ()


FILTERS: dict[str, FilterField] = {
    "id": FilterField("int", "id"),
    "status": FilterField("enum", "status", STATUSES),
    "category": FilterField("enum", "category", CATEGORIES),
    "impact": FilterField("enum", "impact", IMPACTS),
    "completion_reason": FilterField("enum", "completion_reason", COMPLETION_REASONS),
    "team": FilterField("ref", "team_id"),
    "member": FilterField("ref", "member_id"),
    "requested_by": FilterField("ref", "requested_by_id"),
    "requested_for": FilterField("ref", "requested_for_id"),
    "source": FilterField("string", "source"),
    "sourceID": FilterField("string", "sourceID"),
    "created_at": FilterField("time", "created_at"),
    "updated_at": FilterField("time", "updated_at"),
    "completed_at": FilterField("time", "completed_at"),
}
FILTERS["ids"] = FILTERS["id"]
FILTERS["team_id"] = FILTERS["team"]
FILTERS["member_id"] = FILTERS["member"]
NOTE_FILTERS: dict[str, FilterField] = {
    "id": FilterField("int", "id"),
    "created_at": FilterField("time", "created_at"),
}
SORTABLE = ("id", "created_at", "updated_at", "subject", "status", "category", "impact")
NOTE_SORTABLE = ("id", "created_at")
RANGE = re.compile(r"^(>=|>)(.+?)(<=|<)(.+)$")
COMPARISON = re.compile(r"^(>=|<=|>|<)(.*)$")

Predicate = Callable[[dict], bool]


def _convert(spec: FilterField, name: str, raw: str) -> Any:
    raw = raw.strip()
    if spec.kind in ("int", "ref"):
        if not re.fullmatch(r"-?\d+", raw):
            raise BadQuery(f"Filter {name}: '{raw}' is not an integer")
        return int(raw)
    if spec.kind == "enum":
        if raw not in spec.choices:
            raise BadQuery(f"Filter {name}: '{raw}' is not one of {', '.join(spec.choices)}")
        return raw
    if spec.kind == "time":
        try:
            return parse_time(raw)
        except ValueError:
            raise BadQuery(f"Filter {name}: '{raw}' is not an ISO 8601 date or time") from None
    return raw


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None:
        return False
    return {
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[op]


def parse_filter(name: str, value: str, fields: dict[str, FilterField]) -> Predicate:
    """One `field=value` of Xurrent's filter syntax → a predicate on a stored record.

    `name` may end in `!` (the query `status!=assigned` arrives as name `status!`).
    """
    negate = name.endswith("!")
    name = name.rstrip("!")
    spec = fields.get(name)
    if spec is None:
        raise BadQuery(f"Filtering on '{name}' is not supported (fields: {', '.join(fields)})")
    if value.startswith("!"):
        negate, value = not negate, value[1:]
    column = spec.column

    if value == "":  # `f=` empty, `f=!` / `f!=` present

        def empty(record: dict) -> bool:
            return record.get(column) in (None, "")

        return (lambda r: not empty(r)) if negate else empty

    ordered = spec.kind in ("int", "time")
    match = RANGE.match(value)
    if match and ordered:
        low_op, low, high_op, high = match.groups()
        low_v, high_v = _convert(spec, name, low), _convert(spec, name, high)

        def between(record: dict) -> bool:
            got = record.get(column)
            return _compare(low_op, got, low_v) and _compare(high_op, got, high_v)

        return (lambda r: not between(r)) if negate else between
    match = COMPARISON.match(value)
    if match:
        if not ordered:
            raise BadQuery(f"Filter {name}: '<' and '>' work on numbers and times only")
        op, operand = match.groups()
        operand_v = _convert(spec, name, operand)

        def compare(record: dict) -> bool:
            return _compare(op, record.get(column), operand_v)

        return (lambda r: not compare(r)) if negate else compare

    if spec.kind in ("int", "ref", "enum"):  # lists are for integers and enums only
        wanted = {_convert(spec, name, part) for part in value.split(",")}
    else:
        wanted = {_convert(spec, name, value)}
    return lambda r: (r.get(column) in wanted) != negate


def sort_key(sort: str, sortable: Iterable[str]) -> tuple[str, bool]:
    descending = sort.startswith("-")
    name = sort.lstrip("-+")
    if name not in sortable:
        raise BadQuery(f"Sorting on '{name}' is not supported (fields: {', '.join(sortable)})")
    return name, descending


def select(
    records: list[dict],
    params: list[tuple[str, str]],
    fields: dict[str, FilterField],
    sortable: Iterable[str],
) -> list[dict]:
    """Filter (ANDed) and sort records by a list query; default order: id descending."""
    predicates = []
    sort = "-id"
    for name, value in params:
        if name in ("page", "per_page", "fields", "api_version"):
            continue
        if name == "sort":
            sort = value or sort
            continue
        predicates.append(parse_filter(name, value, fields))
    column, descending = sort_key(sort, sortable)
    chosen = [r for r in records if all(p(r) for p in predicates)]
    # Records without a value go last whichever way; ties are broken by id, same direction.
    present = [r for r in chosen if r.get(column) is not None]
    missing = [r for r in chosen if r.get(column) is None]
    present.sort(key=lambda r: (r[column], r["id"]), reverse=descending)
    missing.sort(key=lambda r: r["id"], reverse=descending)
    return present + missing


def page_of(params: list[tuple[str, str]], total: int) -> tuple[int, int, int]:
    """(page, per_page, total pages) for a list query; per_page above 100 is cut to 100."""
    values = dict(params)
    try:
        per_page = int(values.get("per_page", DEFAULT_PER_PAGE))
    except ValueError:
        per_page = DEFAULT_PER_PAGE
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    try:
        page = max(int(values.get("page", 1)), 1)
    except ValueError:
        page = 1
    pages = max((total + per_page - 1) // per_page, 1)
    return page, per_page, pages


# ---------------------------------------------------------------- the store


def fresh_data(first_id: int = 1) -> dict:
    return {
        "version": 1,
        "next_request_id": first_id,
        "next_note_id": first_id,
        "requests": {},
        "notes": {},
        "people": copy.deepcopy(SEED_PEOPLE),
        "teams": copy.deepcopy(SEED_TEAMS),
    }


class Store:
    def __init__(
        self,
        account: str,
        data_file: Path | None = None,
        clock: Clock | None = None,
        first_id: int = 1,
    ):
        self.account = account
        self.data_file = data_file
        self.clock = clock or Clock()
        self.first_id = first_id
        self.lock = threading.RLock()
        self.data = fresh_data(first_id)
        if data_file and data_file.exists():
            self.data = self._load(data_file)

    # ---- persistence

    @staticmethod
    def _load(path: Path) -> dict:
        data = json.loads(path.read_text(encoding="utf-8"))
        # JSON keys are strings; the store keys records by integer id.
        data["requests"] = {int(k): v for k, v in data["requests"].items()}
        data["notes"] = {int(k): v for k, v in data["notes"].items()}
        return data

    def save(self) -> None:
        """Write the data file atomically (a temporary file renamed over it)."""
        if not self.data_file:
            return
        with self.lock:
            text = json.dumps(self.data, indent=1, sort_keys=True)
            directory = self.data_file.parent
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".xurrent_sim-", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.data_file)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def reset(self) -> None:
        with self.lock:
            self.data = fresh_data(self.first_id)
            self.save()

    # ---- people and teams

    def person(self, person_id: int) -> dict | None:
        return next((p for p in self.data["people"] if p["id"] == person_id), None)

    def team(self, team_id: int) -> dict | None:
        return next((t for t in self.data["teams"] if t["id"] == team_id), None)

    def _ref(self, collection: str, ref_id: int | None) -> dict | None:
        if ref_id is None:
            return None
        found = next((x for x in self.data[collection] if x["id"] == ref_id), None)
        return {"id": ref_id, "name": found["name"] if found else None}

    def people(self) -> list[dict]:
        with self.lock:
            return [
                {"id": p["id"], "name": p["name"], "primary_email": p["primary_email"]}
                for p in self.data["people"]
            ]

    def teams(self) -> list[dict]:
        with self.lock:
            return [
                {
                    "id": t["id"],
                    "name": t["name"],
                    "members": [self._ref("people", m) for m in t["members"]],
                }
                for t in self.data["teams"]
            ]

    # ---- requests, as Xurrent shows them

    def present(self, record: dict) -> dict:
        shown = {
            "id": record["id"],
            "subject": record["subject"],
            "category": record["category"],
            "impact": record["impact"],
            "status": record["status"],
            "completion_reason": record["completion_reason"],
            "urgent": record["urgent"],
        }
        for name, collection in REFERENCES.items():
            shown[name] = self._ref(collection, record[f"{name}_id"])
        shown.update(
            {
                "source": record["source"],
                "sourceID": record["sourceID"],
                "custom_fields": copy.deepcopy(record["custom_fields"]),
                "desired_completion_at": iso(record["desired_completion_at"]),
                "waiting_until": iso(record["waiting_until"]),
                "created_at": iso(record["created_at"]),
                "updated_at": iso(record["updated_at"]),
                "completed_at": iso(record["completed_at"]),
                "nodeID": f"sim:{self.account}:request:{record['id']}",
            }
        )
        return shown

    def present_note(self, note: dict) -> dict:
        return {
            "id": note["id"],
            "person": self._ref("people", note["person_id"]),
            "created_at": iso(note["created_at"]),
            "text": note["text"],
            "internal": note["internal"],
            "attachments": [],
        }

    def list_requests(self, params: list[tuple[str, str]]) -> list[dict]:
        with self.lock:
            records = list(self.data["requests"].values())
            return [self.present(r) for r in select(records, params, FILTERS, SORTABLE)]

    def get_request(self, request_id: int) -> dict:
        with self.lock:
            return self.present(self._record(request_id))

    def list_notes(self, request_id: int, params: list[tuple[str, str]]) -> list[dict]:
        with self.lock:
            self._record(request_id)
            notes = self.data["notes"].get(request_id, [])
            return [
                self.present_note(n) for n in select(notes, params, NOTE_FILTERS, NOTE_SORTABLE)
            ]

    def _record(self, request_id: int) -> dict:
        record = self.data["requests"].get(request_id)
        if record is None:
            raise NotFound(f"Request {request_id} not found")
        return record

    # ---- writes

    def create_request(
        self, body: dict, person_id: int = OWNER_ID, source: str | None = None
    ) -> tuple[dict, Change]:
        with self.lock:
            errors, values = self._clean(body, creating=True)
            values.setdefault("status", "assigned")
            if source and not values.get("source"):
                values["source"] = source[:30]
            now = int(self.clock.now())
            record = {
                "id": self.data["next_request_id"],
                "subject": None,
                "category": None,
                "impact": None,
                "status": "assigned",
                "completion_reason": None,
                "urgent": False,
                "team_id": None,
                "member_id": None,
                "requested_by_id": person_id,
                "requested_for_id": person_id,
                "created_by_id": person_id,
                "source": None,
                "sourceID": None,
                "custom_fields": [],
                "desired_completion_at": None,
                "waiting_until": None,
                "created_at": now,
                "updated_at": now,
                "completed_at": None,
            }
            notes = [values.pop(k, None) for k in ("note", "internal_note")]
            record.update(values)
            errors += self._check_record(record, creating=True, skip=errors)
            if errors:
                raise ValidationFailed(errors)
            if record["status"] == "completed":
                record["completed_at"] = now
            self.data["next_request_id"] += 1
            self.data["requests"][record["id"]] = record
            for text, internal in zip(notes, (False, True), strict=True):
                if text:
                    self._add_note(record, text, internal, person_id, now)
            self.save()
            shown = self.present(record)
            return shown, Change([("request.create", record["id"], shown)])

    def update_request(
        self, request_id: int, body: dict, person_id: int = OWNER_ID
    ) -> tuple[dict, Change]:
        with self.lock:
            record = self._record(request_id)
            errors, values = self._clean(body, creating=False)
            notes = [values.pop(k, None) for k in ("note", "internal_note")]
            changed = copy.deepcopy(record)
            changed.update(values)
            errors += self._check_record(changed, creating=False, skip=errors)
            if errors:
                raise ValidationFailed(errors)
            now = int(self.clock.now())
            if changed["status"] == "completed" and record["status"] != "completed":
                changed["completed_at"] = now
            elif changed["status"] != "completed":
                changed["completed_at"] = None
            if changed["status"] != "completed":
                changed["completion_reason"] = None  # a reason belongs to a completed request
            fields_changed = changed != record
            added = [
                self._add_note(changed, text, internal, person_id, now)
                for text, internal in zip(notes, (False, True), strict=True)
                if text
            ]
            change = Change()
            if fields_changed or added:
                changed["updated_at"] = now
                self.data["requests"][request_id] = changed
                self.save()
                shown = self.present(changed)
                change.events.append(("request.update", request_id, shown))
                for note in added:
                    change.events.append(
                        ("request.note-added", request_id, {**shown, "note": note})
                    )
            return self.present(changed if (fields_changed or added) else record), change

    def add_note(
        self, request_id: int, body: dict, person_id: int = OWNER_ID
    ) -> tuple[dict, Change]:
        with self.lock:
            record = self._record(request_id)
            unknown = sorted(set(body) - {"text", "internal", "attachments"})
            errors = [[name, "is not a field of a note"] for name in unknown]
            text = body.get("text")
            internal = body.get("internal", False)
            if not isinstance(text, str) or not text.strip():
                errors.append(["text", "can't be blank"])
            elif len(text.encode()) > NOTE_MAX:
                errors.append(["text", "is too long (maximum is 64 KB)"])
            if not isinstance(internal, bool):
                errors.append(["internal", "must be true or false"])
            if body.get("attachments"):
                errors.append(["attachments", "are not supported by the simulator"])
            if errors:
                raise ValidationFailed(errors)
            now = int(self.clock.now())
            note = self._add_note(record, text, internal, person_id, now)
            record["updated_at"] = now
            self.save()
            shown = self.present(record)
            return note, Change([("request.note-added", request_id, {**shown, "note": note})])

    def _add_note(self, record: dict, text: str, internal: bool, person_id: int, now: int) -> dict:
        note = {
            "id": self.data["next_note_id"],
            "person_id": person_id,
            "created_at": now,
            "text": text,
            "internal": internal,
        }
        self.data["next_note_id"] += 1
        self.data["notes"].setdefault(record["id"], []).append(note)
        return self.present_note(note)

    # ---- validation

    def _clean(self, body: Any, creating: bool) -> tuple[list[list[str]], dict]:
        """Check each given field on its own; returns (errors, values to store)."""
        if not isinstance(body, dict):
            return [["base", "the body must be a JSON object"]], {}
        errors: list[list[str]] = []
        values: dict[str, Any] = {}
        for name, value in body.items():
            if name not in WRITABLE:
                errors.append([name, "is not a writable field of a request"])
                continue
            problem, cleaned = self._clean_one(name, value)
            if problem:
                errors.append([name, problem])
            else:
                values[name] = cleaned
        return errors, values

    def _clean_one(self, name: str, value: Any) -> tuple[str | None, Any]:
        enums = {
            "category": CATEGORIES,
            "impact": IMPACTS,
            "status": STATUSES,
            "completion_reason": COMPLETION_REASONS,
        }
        if name in enums:
            if value is None and name in ("impact", "completion_reason"):
                return None, None
            if value not in enums[name]:
                return f"is not included in the list ({', '.join(enums[name])})", None
            return None, value
        if name == "subject":
            if not isinstance(value, str) or not value.strip():
                return "can't be blank", None
            if len(value) > 255:
                return "is too long (maximum is 255 characters)", None
            return None, value
        if name in ("source", "sourceID"):
            limit = 30 if name == "source" else 128
            if value is None:
                return None, None
            if not isinstance(value, str):
                return "must be a string", None
            if len(value) > limit:
                return f"is too long (maximum is {limit} characters)", None
            return None, value or None
        if name == "urgent":
            if not isinstance(value, bool):
                return "must be true or false", None
            return None, value
        if name.endswith("_id"):
            if value is None:
                return (None, None) if name not in ("team_id",) else ("can't be blank", None)
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, str) and value.isdigit():
                    value = int(value)
                else:
                    return "must be an integer id", None
            found = self.team(value) if name == "team_id" else self.person(value)
            if found is None:
                return (
                    f"does not exist (no {'team' if name == 'team_id' else 'person'} {value})",
                    None,
                )
            return None, value
        if name in DATETIME_FIELDS:
            if value is None:
                return None, None
            try:
                return None, int(parse_time(str(value)))
            except ValueError:
                return "is not an ISO 8601 date-time", None
        if name == "custom_fields":
            if not isinstance(value, list) or not all(
                isinstance(item, dict) and set(item) <= {"id", "value"} and "id" in item
                for item in value
            ):
                return "must be a list of {id, value}", None
            merged = {item["id"]: item.get("value") for item in value}
            return None, [{"id": key, "value": val} for key, val in merged.items()]
        if name in ("note", "internal_note"):
            if value is None or value == "":
                return None, None
            if not isinstance(value, str):
                return "must be text", None
            if len(value.encode()) > NOTE_MAX:
                return "is too long (maximum is 64 KB)", None
            return None, value
        return "is not supported", None

    @staticmethod
    def _check_record(record: dict, creating: bool, skip: list[list[str]]) -> list[list[str]]:
        """Rules across fields, on the record as it would be stored (fields in `skip`
        already have an error of their own)."""
        errors = []
        if creating and not record.get("subject"):
            errors.append(["subject", "can't be blank"])
        if creating and not record.get("category"):
            errors.append(["category", "can't be blank"])
        if creating and not record.get("team_id"):
            errors.append(["team_id", "can't be blank"])
        if record.get("category") == "incident" and not record.get("impact"):
            errors.append(["impact", "can't be blank for an incident"])
        if record.get("status") == "completed" and not record.get("completion_reason"):
            errors.append(["completion_reason", "can't be blank when the status is completed"])
        known = {name for name, _ in skip}
        return [error for error in errors if error[0] not in known]
