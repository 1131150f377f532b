"""A connection's sync state in plain data (sync_status, the operations view)."""

from __future__ import annotations

from django.db.models import Count

from connections.models import Connection
from sync.models import EventState, InboundState, SyncError


def connection_status(connection: Connection) -> dict:
    """Twins (local id, remote id, status, last error) and the queue, both ways."""
    last_errors = {}
    for error in (
        SyncError.objects.unresolved()
        .filter(connection=connection, twin__isnull=False)
        .order_by("last_seen_at", "id")
    ):
        last_errors[error.twin_id] = error  # the newest one wins
    twins = []
    for twin in connection.twins.order_by("id"):
        error = last_errors.get(twin.pk)
        twins.append(
            {
                "twin_id": str(twin.twin_id),
                "local_id": twin.local_request_id,
                "remote_id": twin.remote_request_id or None,
                "status": twin.status,
                "last_seq_sent": twin.last_seq_sent,
                "last_seq_applied": twin.last_seq_applied,
                "dirty": twin.dirty,
                "synced_at": twin.synced_at.isoformat() if twin.synced_at else None,
                "conflicts": len(twin.conflicts),
                "last_error": _error_text(error) if error else None,
            }
        )
    outgoing = _counts(connection.sync_events.all())
    incoming = _counts(connection.inbound_events.all())
    connection_errors = [
        _error_text(e)
        for e in SyncError.objects.unresolved().filter(connection=connection, twin__isnull=True)
    ]
    return {
        "connection": str(connection.pk),
        "name": connection.name,
        "status": connection.status,
        "twins": twins,
        "queue": {state: outgoing.get(state, 0) for state in EventState.values},
        "inbox": {state: incoming.get(state, 0) for state in InboundState.values},
        "errors": connection_errors,
    }


def _counts(events) -> dict[str, int]:
    return {row["state"]: row["n"] for row in events.values("state").annotate(n=Count("id"))}


def _error_text(error: SyncError) -> str:
    where = f" (line {error.line})" if error.line else ""
    side = " [other side]" if error.remote else ""
    blocked = " [blocked]" if error.blocking else ""
    return f"{error.get_kind_display()}{where}{side}{blocked}: {error.message[:300]}"
