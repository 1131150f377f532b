"""Rules that travel: a side's sync rules (both scripts and its triggers) as a JSON file,
and that file imported onto another connection of the same mode.

An import is checked like a save before anything is stored (the file's format, the mode,
each script compiled, each trigger's filter), shows what it changes, and is stored in one
transaction: a new version of the scripts, the file's triggers added or updated, and
triggers the file does not have switched off (kept, so nothing is lost).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from connections.models import Connection, EventKind
from nodes.models import GeneralSettings, Mode
from nodes.validators import normalize_newlines
from sync.defaults import BASIC_OUTGOING, basic_incoming
from sync.models import SyncRuleVersion, Trigger
from sync.sandbox import SCRIPT_MAX_LENGTH, RulesError, compile_rules
from sync.services.rules import (
    NothingChanged,
    get_current_rules,
    save_rules,
    script_diff,
)
from sync.services.scope import ScopeError, add_trigger, parse_query

FORMAT = "exalate-xurrent-sync-rules"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 512 * 1024
MAX_TRIGGERS = 200
NOTE_MAX_LENGTH = 200


class ImportRefused(ValueError):
    """The file cannot be imported onto this connection; the message says why."""


@dataclass(frozen=True)
class TriggerSpec:
    query: str
    active: bool = True
    note: str = ""


@dataclass(frozen=True)
class RulesFile:
    """A rules file that was read and whose format is right (not yet checked against a
    connection)."""

    mode: str
    outgoing: str
    incoming: str
    triggers: tuple[TriggerSpec, ...]
    source: str  # where it came from, in words, for the version's note


# --- export ------------------------------------------------------------------------------


def _exported_scripts(connection: Connection) -> tuple[str, str, int | None]:
    if connection.mode != Mode.SCRIPT:
        return BASIC_OUTGOING, basic_incoming(GeneralSettings.load().basic_team), None
    current = get_current_rules(connection)
    return current.outgoing, current.incoming, current.number


def export_rules(connection: Connection) -> dict[str, Any]:
    """This side's rules as a JSON-ready dict: both scripts in force and the triggers."""
    outgoing, incoming, number = _exported_scripts(connection)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(timespec="seconds"),
        "connection": {"name": connection.name, "mode": connection.mode},
        "rules_version": number,
        "outgoing": outgoing,
        "incoming": incoming,
        "triggers": [
            {"query": t.query, "active": t.active, "note": t.note}
            for t in connection.triggers.order_by("id")
        ],
    }


def export_rules_json(connection: Connection) -> str:
    return json.dumps(export_rules(connection), indent=2, ensure_ascii=False) + "\n"


def export_filename(connection: Connection) -> str:
    safe = "".join(ch if ch.isalnum() else "-" for ch in connection.name.lower()).strip("-")
    return f"sync-rules-{'-'.join(filter(None, safe.split('-')))[:60] or 'connection'}.json"


# --- reading a file ----------------------------------------------------------------------


def _text(data: dict, name: str, *, limit: int) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ImportRefused(f"The file has no {name} script (a text).")
    if len(value) > limit:
        raise ImportRefused(f"The {name} script is longer than {limit:,} characters.")
    return normalize_newlines(value)


def _trigger(item: Any, number: int) -> TriggerSpec:
    if not isinstance(item, dict) or not isinstance(item.get("query"), str):
        raise ImportRefused(f"Trigger {number} of the file has no query (a text).")
    active, note = item.get("active", True), item.get("note", "")
    if not isinstance(active, bool) or not isinstance(note, str):
        raise ImportRefused(f"Trigger {number}: active must be true or false, note a text.")
    try:
        filters = parse_query(item["query"])
    except ScopeError as exc:
        raise ImportRefused(f"Trigger {number} ({item['query']!r}): {exc}") from None
    canonical = "&".join(f"{k}={v}" for k, v in filters.items())
    return TriggerSpec(canonical, active, note.strip()[:NOTE_MAX_LENGTH])


def _triggers(value: Any) -> tuple[TriggerSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ImportRefused("The file's triggers must be a list.")
    if len(value) > MAX_TRIGGERS:
        raise ImportRefused(f"The file has more than {MAX_TRIGGERS} triggers.")
    specs = tuple(_trigger(item, n) for n, item in enumerate(value, start=1))
    queries = [spec.query for spec in specs]
    if len(set(queries)) != len(queries):
        twice = next(q for q in queries if queries.count(q) > 1)
        raise ImportRefused(f"The trigger {twice!r} is in the file twice.")
    return specs


def _source(data: dict) -> str:
    about = data.get("connection") if isinstance(data.get("connection"), dict) else {}
    name = about.get("name") if isinstance(about.get("name"), str) else ""
    number = data.get("rules_version")
    where = f"“{name.strip()[:80]}”" if name.strip() else "a rules file"
    if isinstance(number, int) and not isinstance(number, bool):
        where = f"{where} version {number}"
    return where


def read_rules_file(raw: str | bytes) -> RulesFile:
    """The rules of an exported file; ImportRefused when it is not one this node reads."""
    if len(raw) > MAX_FILE_BYTES:
        raise ImportRefused(f"The file is larger than {MAX_FILE_BYTES // 1024} KB.")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text)
    except UnicodeDecodeError:
        raise ImportRefused("The file is not UTF-8 text.") from None
    except (ValueError, RecursionError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ImportRefused(f"The file is not valid JSON{where}.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ImportRefused(
            "This is not a sync rules file: export one from a connection's sync rules page "
            "or with `manage.py export_rules`."
        )
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ImportRefused(
            f"The file is in format version {version!r}; this node reads version "
            f"{FORMAT_VERSION}. Export it again from a node of this version."
        )
    about = data.get("connection")
    mode = about.get("mode") if isinstance(about, dict) else None
    if mode not in Mode.values:
        raise ImportRefused("The file does not say which mode its connection uses.")
    return RulesFile(
        mode=mode,
        outgoing=_text(data, "outgoing", limit=SCRIPT_MAX_LENGTH),
        incoming=_text(data, "incoming", limit=SCRIPT_MAX_LENGTH),
        triggers=_triggers(data.get("triggers")),
        source=_source(data),
    )


# --- checking and previewing -----------------------------------------------------------------


@dataclass
class ImportPreview:
    """What importing a file would change on a connection."""

    connection: Connection
    rules_file: RulesFile
    based_on: int  # the version in force when the preview was made (0: the defaults)
    scripts_changed: bool
    outgoing_diff: list = field(default_factory=list)
    incoming_diff: list = field(default_factory=list)
    triggers_added: list[TriggerSpec] = field(default_factory=list)
    triggers_updated: list[TriggerSpec] = field(default_factory=list)
    triggers_switched_off: list[Trigger] = field(default_factory=list)
    triggers_kept: list[TriggerSpec] = field(default_factory=list)

    @property
    def changes_anything(self) -> bool:
        return bool(
            self.scripts_changed
            or self.triggers_added
            or self.triggers_updated
            or self.triggers_switched_off
        )

    @property
    def scripts_imported(self) -> bool:
        return self.connection.mode == Mode.SCRIPT

    def summary_lines(self) -> list[str]:
        """The changes in words, one line each (the command prints them)."""
        lines = []
        if not self.scripts_imported:
            lines.append("Basic mode: the scripts are fixed; only the triggers are imported.")
        elif self.scripts_changed:
            lines.append(f"The scripts become version {self.based_on + 1}.")
        else:
            lines.append("The scripts are the same as the ones in force.")
        lines += [f"Trigger added: {t.query}" for t in self.triggers_added]
        lines += [f"Trigger updated: {t.query}" for t in self.triggers_updated]
        lines += [f"Trigger switched off: {t.query}" for t in self.triggers_switched_off]
        if not self.changes_anything:
            lines.append("Nothing changes: this connection already has these rules.")
        return lines


def check_rules_file(connection: Connection, rules_file: RulesFile) -> None:
    """Refuse a file that cannot go onto this connection, as a save would refuse it."""
    if rules_file.mode != connection.mode:
        raise ImportRefused(
            f"The file holds the rules of a {Mode(rules_file.mode).label} mode connection, "
            f"and this connection uses {connection.get_mode_display()} mode: rules travel "
            "only between connections of the same mode."
        )
    if connection.mode != Mode.SCRIPT:
        return
    try:
        compile_rules(rules_file.outgoing, rules_file.incoming)
    except RulesError as exc:
        details = "; ".join(
            f"the {direction} script, {problem}"
            for direction, problems in exc.problems.items()
            for problem in problems
        )
        raise ImportRefused(
            f"The file's scripts do not compile, nothing was imported: {details}."
        ) from None


def preview_import(connection: Connection, rules_file: RulesFile) -> ImportPreview:
    """Check the file against the connection and say what importing it would change."""
    check_rules_file(connection, rules_file)
    current = get_current_rules(connection)
    preview = ImportPreview(
        connection=connection,
        rules_file=rules_file,
        based_on=current.number or 0,
        scripts_changed=False,
    )
    if connection.mode == Mode.SCRIPT:
        label = f"version {current.number}" if current.number else "the defaults"
        preview.outgoing_diff = script_diff(
            current.outgoing, rules_file.outgoing, "Outgoing", label, "the file"
        )
        preview.incoming_diff = script_diff(
            current.incoming, rules_file.incoming, "Incoming", label, "the file"
        )
        preview.scripts_changed = bool(preview.outgoing_diff or preview.incoming_diff)
        # A version that is only a restore of the defaults still counts as a change.
        preview.scripts_changed |= current.version is None
    existing = {t.query: t for t in connection.triggers.all()}
    wanted = {spec.query for spec in rules_file.triggers}
    for spec in rules_file.triggers:
        trigger = existing.get(spec.query)
        if trigger is None:
            preview.triggers_added.append(spec)
        elif (trigger.active, trigger.note) != (spec.active, spec.note):
            preview.triggers_updated.append(spec)
        else:
            preview.triggers_kept.append(spec)
    preview.triggers_switched_off = [
        t for query, t in existing.items() if query not in wanted and t.active
    ]
    return preview


# --- importing -----------------------------------------------------------------------------


def import_note(rules_file: RulesFile) -> str:
    return f"Imported from {rules_file.source}."[:NOTE_MAX_LENGTH]


def import_rules(
    connection: Connection,
    rules_file: RulesFile,
    user=None,
    *,
    based_on: int | None = None,
) -> tuple[ImportPreview, SyncRuleVersion | None]:
    """Store the file's rules on the connection, all or nothing.

    Returns the preview of what was done and the new version (None when the scripts did
    not change, or in Basic mode). Raises ImportRefused, or StaleRules when `based_on` is
    given and someone saved in the meantime.
    """
    with transaction.atomic():
        # The connection's row lock (taken by save_rules too) keeps two imports apart.
        Connection.objects.select_for_update().only("pk").get(pk=connection.pk)
        preview = preview_import(connection, rules_file)
        version = None
        if preview.scripts_imported:
            try:
                version = save_rules(
                    connection,
                    rules_file.outgoing,
                    rules_file.incoming,
                    user,
                    note=import_note(rules_file),
                    based_on=based_on,
                )
            except NothingChanged:
                version = None
        _apply_triggers(connection, preview, user)
        if version is None and preview.changes_anything:
            connection.record(
                EventKind.RULES_CHANGED,
                f"Triggers imported from {rules_file.source}.",
                user=user,
            )
    return preview, version


def _apply_triggers(connection: Connection, preview: ImportPreview, user) -> None:
    for spec in preview.triggers_added:
        trigger = add_trigger(connection, spec.query, note=spec.note, user=user)
        if not spec.active:
            trigger.active = False
            trigger.save(update_fields=["active"])
    for spec in preview.triggers_updated:
        connection.triggers.filter(query=spec.query).update(active=spec.active, note=spec.note)
    for trigger in preview.triggers_switched_off:
        trigger.active = False
        trigger.save(update_fields=["active"])
