"""Waking the node's workers (`run_worker`) when there is work: peer notifications, sync
events, webhook hints. Every app queues work, so this sits at the bottom of the layout.
"""

from __future__ import annotations

import time

from django import db
from django.db import transaction

# Workers LISTEN on this channel (PostgreSQL); queuing work NOTIFYs it.
CHANNEL = "exalate_outbox"
# Without LISTEN/NOTIFY (SQLite, the embedded default) a worker looks this often.
POLL_SECONDS = 0.5


def wake_workers() -> None:
    """Once this transaction commits, wake every worker waiting for work."""
    if db.connection.vendor == "postgresql":
        transaction.on_commit(_notify)


def _notify() -> None:
    with db.connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


def wait_for_work(timeout: float) -> None:
    """Return when work was queued (PostgreSQL: at once, by NOTIFY) or after `timeout`."""
    if db.connection.vendor != "postgresql":
        time.sleep(min(timeout, POLL_SECONDS))
        return
    db.connection.ensure_connection()
    listener = db.connection.connection  # the psycopg connection, in autocommit
    listener.execute(f"LISTEN {CHANNEL}")
    for _notice in listener.notifies(timeout=timeout, stop_after=1):
        break
    # The round this wakes takes all the work queued so far, however many NOTIFYs
    # announced it: the others are dropped. Kept, each would wake the worker for a round
    # that finds nothing, one after another: after a burst of 1,000 webhooks (one NOTIFY
    # each, taken in while the worker was busy), it went round some 850 times for nothing,
    # at 60 rounds a second. A NOTIFY that comes during the round wakes the next wait.
    for _notice in listener.notifies(timeout=0):
        pass
