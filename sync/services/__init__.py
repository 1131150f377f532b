"""Workflows of the sync app. Saving rules lives in `rules`; the engine in the others.

The rule functions stay importable from here (`from sync.services import save_rules`).
"""

from sync.services.rules import (
    CurrentRules,
    NothingChanged,
    RulesNotEditable,
    StaleRules,
    get_current_rules,
    restore_rules,
    save_rules,
    script_diff,
)

__all__ = [
    "CurrentRules",
    "NothingChanged",
    "RulesNotEditable",
    "StaleRules",
    "get_current_rules",
    "restore_rules",
    "save_rules",
    "script_diff",
]
