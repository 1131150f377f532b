"""Connections and their events, the outbox to peers, and used node-token ids."""

from connections.models.connection import (
    REMOTE_DELETED_REASON,
    Connection,
    ConnectionEvent,
    ConnectionQuerySet,
    EventKind,
    ModeChangeError,
    Peer,
    RemoteStatus,
    Role,
    Status,
    real_user,
)
from connections.models.outbox import NotificationState, PeerNotification
from connections.models.tokens import UsedToken

__all__ = [
    "REMOTE_DELETED_REASON",
    "Connection",
    "ConnectionEvent",
    "ConnectionQuerySet",
    "EventKind",
    "ModeChangeError",
    "NotificationState",
    "Peer",
    "PeerNotification",
    "RemoteStatus",
    "Role",
    "Status",
    "UsedToken",
    "real_user",
]
