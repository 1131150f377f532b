"""Sync rules (Script mode): the sandbox, the default scripts and the samples.

`services` (saving and restoring versions) needs Django and is imported on its own;
everything re-exported here does not, so the sandbox worker can load it.
"""

from sync.defaults import (
    BASIC_FIELDS,
    BASIC_INCOMING,
    BASIC_OUTGOING,
    DEFAULT_INCOMING,
    DEFAULT_OUTGOING,
    SAMPLE_REPLICA,
    SAMPLE_REQUEST,
)
from sync.sandbox import (
    Outcome,
    Problem,
    RulesError,
    ScriptError,
    check_script,
    compile_rules,
    compile_script,
    run_incoming,
    run_outgoing,
)

__all__ = [
    "BASIC_FIELDS",
    "BASIC_INCOMING",
    "BASIC_OUTGOING",
    "DEFAULT_INCOMING",
    "DEFAULT_OUTGOING",
    "SAMPLE_REPLICA",
    "SAMPLE_REQUEST",
    "Outcome",
    "Problem",
    "RulesError",
    "ScriptError",
    "check_script",
    "compile_rules",
    "compile_script",
    "run_incoming",
    "run_outgoing",
]
