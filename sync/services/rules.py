"""Saving and restoring a connection's sync rules: each change is a new version."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from django.db import transaction

from connections.models import Connection, EventKind, real_user
from nodes.models import Mode
from nodes.validators import normalize_newlines
from sync.defaults import DEFAULT_INCOMING, DEFAULT_OUTGOING
from sync.models import SyncRuleVersion
from sync.sandbox import compile_rules


class RulesNotEditable(Exception):
    """The connection's rules cannot be changed (Basic mode)."""


class StaleRules(Exception):
    """Someone saved a newer version while the admin was editing an older one."""

    def __init__(self, current: SyncRuleVersion):
        super().__init__(f"Version {current.number} was saved in the meantime.")
        self.current = current


class NothingChanged(Exception):
    """The text is the same as the current version's: no new version is made."""

    def __init__(self, current: SyncRuleVersion):
        super().__init__(f"The rules are the same as version {current.number}.")
        self.current = current


@dataclass(frozen=True)
class CurrentRules:
    """The rules in force: the latest version, or the defaults before the first save."""

    outgoing: str
    incoming: str
    version: SyncRuleVersion | None

    @property
    def number(self) -> int | None:
        return self.version.number if self.version else None


def get_current_rules(connection: Connection) -> CurrentRules:
    latest = connection.rule_versions.order_by("-number").first()
    if latest is None:
        return CurrentRules(DEFAULT_OUTGOING, DEFAULT_INCOMING, None)
    return CurrentRules(latest.outgoing, latest.incoming, latest)


def save_rules(
    connection: Connection,
    outgoing: str,
    incoming: str,
    user=None,
    *,
    note: str = "",
    based_on: int | None = None,
    assist_prompt: str = "",
) -> SyncRuleVersion:
    """Store both scripts as the connection's next version and record the change.

    Raises RulesError when a script does not compile, RulesNotEditable in Basic mode,
    StaleRules when `based_on` (the version the admin started from; 0 for the
    defaults) is no longer the latest, and NothingChanged when the text is the latest
    version's. Nothing is stored in any of these cases. `assist_prompt` is the admin's
    words when the text started as an AI Assist draft.
    """
    if connection.mode != Mode.SCRIPT:
        raise RulesNotEditable("Basic mode connections have fixed sync rules.")
    outgoing, incoming = normalize_newlines(outgoing), normalize_newlines(incoming)
    compile_rules(outgoing, incoming)
    with transaction.atomic():
        # Lock the connection so two saves cannot take the same number.
        Connection.objects.select_for_update().only("pk").get(pk=connection.pk)
        latest = connection.rule_versions.order_by("-number").first()
        if latest is not None and based_on is not None and based_on != latest.number:
            raise StaleRules(latest)
        if latest and (latest.outgoing, latest.incoming) == (outgoing, incoming):
            raise NothingChanged(latest)
        version = SyncRuleVersion.objects.create(
            connection=connection,
            number=(latest.number if latest else 0) + 1,
            outgoing=outgoing,
            incoming=incoming,
            created_by=real_user(user),
            note=note.strip()[:200],
            assist_prompt=assist_prompt.strip(),
        )
        message = f"Sync rules saved as version {version.number}."
        if version.note:
            message = f"{message} Note: {version.note}"
        connection.record(EventKind.RULES_CHANGED, message, user=user)
    return version


def restore_rules(connection: Connection, number: int, user=None) -> SyncRuleVersion:
    """Make an earlier version the current one again, as a new version with its text.

    Raises SyncRuleVersion.DoesNotExist for an unknown number, and what save_rules
    raises (NothingChanged when that version's text is already in force).
    """
    old = connection.rule_versions.get(number=number)
    return save_rules(
        connection, old.outgoing, old.incoming, user, note=f"Restored from version {number}."
    )


def script_diff(before: str, after: str, name: str, before_label: str, after_label: str) -> list:
    """A unified diff as (kind, line) pairs; kind is a CSS class suffix. Empty when the
    texts are the same."""
    lines = difflib.unified_diff(
        before.splitlines(),
        after.splitlines(),
        fromfile=f"{name}, {before_label}",
        tofile=f"{name}, {after_label}",
        lineterm="",
    )
    kinds = []
    for line in lines:
        if line.startswith(("---", "+++")):
            kind = "file"
        else:
            kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        kinds.append((kind, line))
    return kinds
