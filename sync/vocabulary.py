"""What a sync rule can use, described from the sandbox itself.

The fields come from `sync.entity.ENTITY_FIELDS`, the names each direction finds from
`sync.sandbox.SCRIPT_NAMES` and the builtins from `sandbox_globals`: the editor's completion
(as JSON), the rules page's help and the AI Assist prompt all read this module, so none of
them is a second list to keep up to date.

Nothing here imports Django.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from sync.entity import CATEGORIES, ENTITY_FIELDS, IMPACTS, STATUSES, Field
from sync.sandbox import (
    DIRECTIONS,
    FORBIDDEN_NAMES,
    INCOMING_HELPERS,
    SCRIPT_NAMES,
    TIME_LIMIT,
    sandbox_globals,
)


def builtin_names() -> list[str]:
    """The builtins a script gets, as the sandbox hands them out."""
    return sorted(sandbox_globals([])["__builtins__"])


def call_signature(name: str) -> str:
    """`merge_comments(local, remote)`: how a script calls a helper."""
    parameters = inspect.signature(INCOMING_HELPERS[name]).parameters
    return f"{name}({', '.join(parameters)})"


def _field(field: Field) -> dict[str, Any]:
    data: dict[str, Any] = {"name": field.name, "kind": field.kind, "doc": field.doc}
    if field.fields:
        data["fields"] = [_field(sub) for sub in field.fields]
    return data


@cache
def script_vocabulary() -> dict[str, Any]:
    """Everything a script can use, as JSON for the editor's completion."""
    directions = {}
    for direction in DIRECTIONS:
        names = []
        for item in SCRIPT_NAMES[direction]:
            entry = {"name": item.name, "kind": item.kind, "doc": item.doc}
            if item.kind == "helper":
                entry["signature"] = call_signature(item.name)
            names.append(entry)
        directions[direction] = names
    return {
        "fields": [_field(field) for field in ENTITY_FIELDS],
        "directions": directions,
        "builtins": builtin_names(),
    }


def _field_lines(fields: tuple[Field, ...], indent: str = "- ") -> list[str]:
    lines = []
    for field in fields:
        lines.append(f"{indent}{field.name} ({field.kind}): {field.doc}")
        if field.fields:
            inner = ", ".join(sub.name for sub in field.fields)
            what = "each item has" if field.kind.startswith("list") else "it has"
            lines.append(f"    {what}: {inner}")
    return lines


def sandbox_description() -> str:
    """The sandbox in plain words, for a person or a model writing a script."""
    lines = [
        "Sync rules are short Python scripts run in a sandbox (RestrictedPython).",
        "The outgoing script runs when a local Xurrent request changes: it copies from "
        "`entity` (the local request) to `replica` (what the other side receives).",
        "The incoming script runs when a replica arrives from the other side: it applies "
        "`replica` to `entity` (the local request).",
        "Fields are read and set with a dot (`replica.summary = entity.summary`); a field "
        "that is not there reads as None.",
        "",
        "Fields of a request (entity; a replica usually carries the same names):",
        *_field_lines(ENTITY_FIELDS),
        "",
    ]
    for direction in DIRECTIONS:
        lines.append(f"Names the {direction} script finds set:")
        for item in SCRIPT_NAMES[direction]:
            name = call_signature(item.name) if item.kind == "helper" else item.name
            lines.append(f"- {name}: {item.doc}")
        lines.append("")
    lines += [
        f"Xurrent statuses: {', '.join(STATUSES)}.",
        f"Xurrent impacts (entity.priority): {', '.join(IMPACTS)}.",
        f"Xurrent categories: {', '.join(CATEGORIES)}.",
        "",
        f"Builtins available: {', '.join(builtin_names())}.",
        "Plain Python otherwise: if, for, while, functions (def), lists, dicts, "
        "comprehensions, print() (shown by the test run).",
        "Not available: import, classes, names or attributes that start with an "
        f"underscore, files, the network, and {', '.join(sorted(FORBIDDEN_NAMES))}.",
        f"A script may run for at most {TIME_LIMIT:g} second.",
    ]
    return "\n".join(lines)
