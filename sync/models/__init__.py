"""Sync rules, triggers, twins, the sync queue (both ways) and sync errors."""

from sync.models.errors import BLOCK_AFTER, ErrorKind, ErrorLevel, ErrorPlace, SyncError
from sync.models.pull import PullFeed, PullPosition
from sync.models.queue import (
    FINAL_STATES,
    EventAction,
    EventState,
    InboundEvent,
    InboundState,
    SyncEvent,
)
from sync.models.rules import SyncRuleVersion
from sync.models.twins import (
    BulkExalate,
    BulkState,
    NoteMap,
    NoteOrigin,
    PollState,
    Trigger,
    Twin,
    TwinOrigin,
    TwinStatus,
)

__all__ = [
    "BLOCK_AFTER",
    "FINAL_STATES",
    "BulkExalate",
    "BulkState",
    "ErrorPlace",
    "InboundState",
    "TwinOrigin",
    "ErrorKind",
    "ErrorLevel",
    "EventAction",
    "EventState",
    "InboundEvent",
    "NoteMap",
    "NoteOrigin",
    "PollState",
    "PullFeed",
    "PullPosition",
    "SyncError",
    "SyncEvent",
    "SyncRuleVersion",
    "Trigger",
    "Twin",
    "TwinStatus",
]
