"""The data that sync rules work on: Exalate's view of an Xurrent request.

Nothing here imports Django: the sandbox worker process loads this module on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Values an Xurrent request accepts (Xurrent Requests API).
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
# Why a completed request was completed (Xurrent's completion_reason).
RESOLUTIONS = (
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
SUMMARY_MAX_LENGTH = 255
TEAM_NEEDED = (
    "A new Xurrent request needs a team: set entity.team in the incoming script's "
    'first_sync part, to a team of this Xurrent account by name (entity.team = "Service '
    'Desk") or by id (entity.team = 12).'
)


@dataclass(frozen=True)
class Field:
    """One field a script reads on `entity` (and usually writes on `replica`).

    This table is the one description of what a script sees: the editor's completion,
    the rules page's help and the AI Assist prompt are all made from it.
    """

    name: str
    kind: str  # in words: "text", "reference", "list of comments"...
    doc: str
    # What a reference, or each item of a list, holds.
    fields: tuple[Field, ...] = ()


REFERENCE_FIELDS = (
    Field("id", "number", "Its id in this Xurrent account (None for a bare name)."),
    Field("name", "text", "Its name."),
)
# How an incoming script may set a reference (the engine looks names up in the account).
BY_NAME = (
    " An incoming script sets it by name (looked up in this Xurrent account) or by id (a number)."
)


def _by_person(name: str) -> str:
    return (
        " An incoming script sets it by the person's name or email address (looked up in "
        "this Xurrent account) or by id (a number); the other side's ids mean nothing here, "
        f"so copy replica.{name}.name, not replica.{name}."
    )


COMMENT_FIELDS = (
    Field("id", "number", "The note's id in this Xurrent account (None before it is stored)."),
    Field("author", "text", "The name of the person who wrote it."),
    Field("body", "text", "The text of the note."),
    Field("created", "text", "When it was written (ISO 8601)."),
    Field("internal", "True/False", "Whether it is an internal note."),
    Field("remote_id", "number", "On a copy of the other side's note: that note's id there."),
)
ATTACHMENT_FIELDS = (
    Field("id", "number", "The file's id in this Xurrent account."),
    Field("filename", "text", "The file name."),
    Field("size", "number", "The size in bytes."),
    Field("content_type", "text", "The media type, e.g. application/pdf."),
    Field("internal", "True/False", "Whether it is attached to an internal note."),
    Field("remote_id", "number", "On a copy of the other side's file: its id there."),
)

# The fields of Exalate's view of a Xurrent request, in the order people read them.
ENTITY_FIELDS = (
    Field("key", "text", "The Xurrent request id, as text."),
    Field("summary", "text", f"The request's subject (at most {SUMMARY_MAX_LENGTH} characters)."),
    Field("description", "text", "The request's first note: what the requester wrote."),
    Field("status", "text", "The Xurrent status, e.g. assigned, in_progress, completed."),
    Field("priority", "text", "The request's impact: low, medium, high or top."),
    Field(
        "resolution",
        "text",
        "Why a completed request was completed (Xurrent's completion reason: "
        + ", ".join(RESOLUTIONS)
        + "); None while it is open. Xurrent needs one when the status is completed.",
    ),
    Field("category", "text", "The Xurrent category, e.g. incident, rfc, rfi."),
    Field(
        "service",
        "reference",
        "The service instance. An incoming script sets it by id (a number) only.",
        REFERENCE_FIELDS,
    ),
    Field(
        "team",
        "reference",
        "The team the request is assigned to; a new request needs one." + BY_NAME,
        REFERENCE_FIELDS,
    ),
    Field(
        "assignee",
        "reference",
        "The member the request is assigned to." + _by_person("assignee"),
        REFERENCE_FIELDS,
    ),
    Field(
        "reporter",
        "reference",
        "The person who requested it." + _by_person("reporter"),
        REFERENCE_FIELDS,
    ),
    Field("requested_by", "reference", "The same as reporter.", REFERENCE_FIELDS),
    Field("labels", "list of text", "The request's labels."),
    Field("comments", "list of comments", "The later notes, oldest first.", COMMENT_FIELDS),
    Field(
        "attachments",
        "list of attachments",
        "The files of the request and of its notes.",
        ATTACHMENT_FIELDS,
    ),
    Field("customFields", "object", "Custom field values by their id: customFields['ci_id']."),
    Field("template", "reference", "The request template it was made from.", REFERENCE_FIELDS),
)

# The order fields are shown in, for people reading a replica or a list of changes.
FIELD_ORDER = tuple(field.name for field in ENTITY_FIELDS)


class Record(dict):
    """A JSON object that scripts read and write with attributes.

    `replica.summary = entity.summary` reads like Exalate's own scripts; a field that is
    not there reads as None, as it does there. It stays a dict, so it is JSON as it is.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        self.pop(name, None)


def to_record(value: Any) -> Any:
    """JSON data with every object turned into a Record (nested ones too)."""
    if isinstance(value, Mapping):
        return Record((str(k), to_record(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return [to_record(v) for v in value]
    return value


def ordered(data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields in reading order: the known ones first, then the rest by name."""
    rank = {name: i for i, name in enumerate(FIELD_ORDER)}
    keys = sorted(data, key=lambda k: (rank.get(k, len(rank)), k))
    return {k: data[k] for k in keys}


# --- a Xurrent request (REST shape) as the entity scripts see ------------------------------


def _list(value: Any) -> list:
    return list(value) if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _reference(value: Any) -> Record | None:
    """A Xurrent reference (`{"id", "name"}`) as a small record; a bare name is accepted."""
    if isinstance(value, Mapping):
        return Record(id=value.get("id"), name=_text(value.get("name")))
    if isinstance(value, str) and value:
        return Record(id=None, name=value)
    return None


def _attachment(value: Mapping, *, internal: bool) -> Record:
    return Record(
        id=value.get("id"),
        filename=_text(value.get("name")) or _text(value.get("filename")),
        size=value.get("size") if isinstance(value.get("size"), int) else None,
        content_type=_text(value.get("content_type")),
        internal=internal,
    )


def entity_from_request(request: Mapping[str, Any]) -> Record:
    """Exalate's view of a Xurrent request given as the REST API returns it.

    A Xurrent request has no description field: its first note is what the requester
    wrote, so that note is the description and the later notes are the comments.
    Exalate's `priority` is the request's impact (Xurrent has no priority of its own).
    """
    notes = [n for n in _list(request.get("notes")) if isinstance(n, Mapping)]
    notes.sort(key=_note_order)
    first, later = notes[:1], notes[1:]

    attachments = _all_attachments(request, notes)
    request_id = request.get("id")
    custom_fields = {
        str(cf.get("id")): cf.get("value")
        for cf in _list(request.get("custom_fields"))
        if isinstance(cf, Mapping) and cf.get("id") is not None
    }
    return Record(
        key=str(request_id) if isinstance(request_id, int | str) else None,
        summary=_text(request.get("subject")),
        description=_text(first[0].get("text")) if first else None,
        status=_text(request.get("status")),
        priority=_text(request.get("impact")),
        resolution=_text(request.get("completion_reason")),
        category=_text(request.get("category")),
        service=_reference(request.get("service_instance")),
        team=_reference(request.get("team")),
        assignee=_reference(request.get("member")),
        reporter=_reference(request.get("requested_by")),
        requested_by=_reference(request.get("requested_by")),
        labels=[label for label in _list(request.get("labels")) if isinstance(label, str)],
        comments=[_comment(n) for n in later],
        attachments=attachments,
        customFields=to_record(custom_fields),
        template=_reference(request.get("template")),
    )


def _note_order(note: Mapping[str, Any]) -> tuple:
    """Oldest first; notes of the same second (Xurrent's times have whole seconds) in the
    order they were added, which their ids follow."""
    note_id = note.get("id")
    number = note_id if isinstance(note_id, int) and not isinstance(note_id, bool) else 0
    return (_text(note.get("created_at")) or "", number, str(note_id))


def _comment(note: Mapping[str, Any]) -> Record:
    comment = Record(
        id=note.get("id"),
        author=(_reference(note.get("person")) or Record(name=None)).name,
        body=_text(note.get("text")),
        created=_text(note.get("created_at")),
        internal=note.get("internal") is True,
    )
    # The sync engine marks a note that is the copy of one on the other side with that
    # note's id there, so the other side does not copy it back.
    if note.get("remote_id") is not None:
        comment.remote_id = note.get("remote_id")
    return comment


def _all_attachments(request: Mapping[str, Any], notes: list[Mapping]) -> list[Record]:
    """The request's own attachments, then those of its notes (internal with theirs)."""
    attachments = [
        _attachment(a, internal=False)
        for a in _list(request.get("attachments"))
        if isinstance(a, Mapping)
    ]
    for note in notes:
        internal = note.get("internal") is True
        attachments += [
            _attachment(a, internal=internal)
            for a in _list(note.get("attachments"))
            if isinstance(a, Mapping)
        ]
    return attachments


# --- helpers offered to incoming scripts ----------------------------------------------------


def _records(value: Any, what: str) -> list[Mapping]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
        raise TypeError(f"{what} must be a list of objects")
    return list(value)


def merge_comments(local: Iterable | None, remote: Iterable | None) -> list[Record]:
    """The local comments plus the other side's new ones; edited ones get the new text.

    A comment that came from the other side remembers its id there (`remote_id`), so a
    second sync adds nothing twice; a comment the other side got from us is not copied
    back.
    """
    merged = [Record(c) for c in _records(local, "the local comments")]
    synced = {c.get("remote_id"): c for c in merged if c.get("remote_id") is not None}
    ours = {c.get("id") for c in merged if c.get("id") is not None}
    for comment in _records(remote, "the replica's comments"):
        if comment.get("remote_id") is not None and comment.get("remote_id") in ours:
            continue
        remote_id = comment.get("id")
        if remote_id is not None and remote_id in synced:
            synced[remote_id].body = comment.get("body")
            continue
        merged.append(
            Record(
                id=None,
                remote_id=remote_id,
                author=comment.get("author"),
                body=comment.get("body"),
                created=comment.get("created"),
                # Whatever the other side chose to send as internal stays internal here.
                internal=comment.get("internal") is True,
            )
        )
    return merged


def merge_attachments(local: Iterable | None, remote: Iterable | None) -> list[Record]:
    """The local attachments plus the ones the other side has and this side has not."""
    merged = [Record(a) for a in _records(local, "the local attachments")]
    synced = {a.get("remote_id") for a in merged if a.get("remote_id") is not None}
    ours = {a.get("id") for a in merged if a.get("id") is not None}
    for attachment in _records(remote, "the replica's attachments"):
        remote_id = attachment.get("id")
        if attachment.get("remote_id") is not None and attachment.get("remote_id") in ours:
            continue
        if remote_id is not None and remote_id in synced:
            continue
        merged.append(Record(attachment, id=None, remote_id=remote_id, internal=False))
    return merged


# --- reading the result of an incoming script ------------------------------------------------


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any

    # For the page: each side as readable JSON.
    @property
    def before_json(self) -> str:
        return json.dumps(self.before, indent=2, ensure_ascii=False)

    @property
    def after_json(self) -> str:
        return json.dumps(self.after, indent=2, ensure_ascii=False)

    @property
    def count_note(self) -> str:
        """For lists (comments, attachments...): how many items before and after."""
        if isinstance(self.after, list) and isinstance(self.before, list | None):
            return f"{len(self.before or [])} → {len(self.after)} items"
        return ""


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """What an incoming script changed on the local request, field by field."""
    fields = ordered({**before, **after})
    return [
        Change(name, before.get(name), after.get(name))
        for name in fields
        if before.get(name) != after.get(name)
    ]


def request_problems(entity: Mapping[str, Any], *, first_sync: bool) -> list[str]:
    """Why Xurrent would refuse to store this request, in words for the admin."""
    problems = []
    status, priority = entity.get("status"), entity.get("priority")
    category = entity.get("category")
    if status is not None and status not in STATUSES:
        problems.append(f"The status {status!r} is not a Xurrent request status.")
    if priority is not None and priority not in IMPACTS:
        problems.append(
            f"The priority {priority!r} is not a Xurrent impact (low, medium, high, top)."
        )
    resolution = entity.get("resolution")
    if resolution is not None and resolution not in RESOLUTIONS:
        problems.append(
            f"The resolution {resolution!r} is not a Xurrent completion reason "
            f"({', '.join(RESOLUTIONS)})."
        )
    if status == "completed" and not resolution:
        problems.append(
            "A completed Xurrent request needs a resolution (its completion reason): set "
            'entity.resolution, e.g. entity.resolution = replica.resolution or "solved".'
        )
    if category is not None and category not in CATEGORIES:
        problems.append(f"The category {category!r} is not a Xurrent request category.")
    summary = entity.get("summary")
    if first_sync and not summary:
        problems.append("A new Xurrent request needs a summary (its subject).")
    if isinstance(summary, str) and len(summary) > SUMMARY_MAX_LENGTH:
        problems.append(f"The summary is longer than Xurrent's {SUMMARY_MAX_LENGTH} characters.")
    if first_sync and not category:
        problems.append("A new Xurrent request needs a category.")
    if first_sync and not entity.get("team") and not entity.get("service"):
        problems.append(TEAM_NEEDED)
    if first_sync and category == "incident" and not priority:
        problems.append(
            "A new Xurrent incident needs an impact: set entity.priority (low, medium, high "
            "or top) in the incoming script's first_sync part."
        )
    return problems


# Entity fields an incoming script may give by name, and what the name is looked up among.
NAMED_REFERENCES = {"team": "teams", "assignee": "people", "reporter": "people"}


def reference_notes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """For the test run: the references the script set by name, which the sync looks up
    in this Xurrent account when it writes (the test run looks nothing up)."""
    notes = []
    for name, among in NAMED_REFERENCES.items():
        value = after.get(name)
        if isinstance(value, Mapping) and not isinstance(value.get("id"), int):
            value = value.get("name")
        if not isinstance(value, str) or value == before.get(name):
            continue
        old = before.get(name)
        if isinstance(old, Mapping) and old.get("name") == value:
            continue
        notes.append(
            f"entity.{name} is given by name ({value!r}): the sync writes the id of the one "
            f"of this Xurrent account's {among} with that name{_email_words(name)}, and stops "
            "with an error naming it if there is none or more than one."
        )
    return notes


def _email_words(name: str) -> str:
    return " or email address" if name != "team" else ""
