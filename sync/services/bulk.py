"""Bulk exalate pressed on the Sync tab: the worker goes through the matches while the
tab shows how far it got and how the requests it started are doing.

The press only stores the run (a second press finds the one running); `run_worker`
takes it with a lease, so one worker of several goes through it, and goes through it in
a thread of its own, so the sync queue keeps moving meanwhile (the requests it starts
are sent while it still looks for more).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from django import db
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from connections.models import Connection
from sync.models import BulkExalate, BulkState, SyncError, Twin, TwinOrigin, TwinStatus
from sync.models.claims import claim
from sync.services.gateway import NotConfigured
from sync.services.scope import run_bulk_exalate, start_bulk_exalate, wake_workers_now

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
# A run the page started that no worker took within this time: the tab says so.
NO_WORKER_AFTER = timedelta(seconds=20)


def start_bulk_from_page(connection: Connection, user=None) -> tuple[BulkExalate, bool]:
    """Store a run for the worker; pressing again while one runs gives that one.
    Returns (run, started now); ScopeError when the connection cannot sync."""
    run, started = start_bulk_exalate(connection, user)
    if started:
        BulkExalate.objects.filter(pk=run.pk).update(in_worker=True)
        run.in_worker = True
        wake_workers_now()
    return run, started


# --- the worker's part ------------------------------------------------------------------------

_running: dict[int, threading.Thread] = {}


def bulk_worker_task() -> bool:
    """`run_worker`'s hook: take a run started on the page, if none runs in this process,
    and go through it in a thread. Returns False: the thread does the work, the worker's
    round need not hurry for it."""
    for pk, thread in list(_running.items()):
        if not thread.is_alive():
            del _running[pk]
    if _running:
        return False
    for run in claim_bulk_runs(limit=1):
        thread = threading.Thread(
            target=_run_in_thread, args=(run.pk,), name=f"bulk-exalate-{run.pk}", daemon=True
        )
        _running[run.pk] = thread
        thread.start()
    return False


def claim_bulk_runs(limit: int = 1) -> list[BulkExalate]:
    """Runs started on the page that no worker holds (or whose worker stopped)."""
    now = timezone.now()
    due = BulkExalate.objects.filter(state=BulkState.RUNNING, in_worker=True).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    )
    return claim(due, limit, LEASE, order_by=("started_at", "id"))


def _run_in_thread(pk: int) -> None:
    try:
        run_claimed(BulkExalate.objects.select_related("connection").get(pk=pk))
    except Exception:
        # The lease runs out and another round takes the run again.
        logger.exception("Bulk exalate %s stopped", pk)
    finally:
        db.connections.close_all()  # this thread's connections only


def run_claimed(run: BulkExalate, *, gateway=None) -> BulkExalate:
    """Go through a claimed run, keeping the lease while pages come in."""
    if run.found or run.exalated or run.skipped:
        # Its first worker stopped half-way: count again from the start (what it started
        # then is counted as skipped now).
        BulkExalate.objects.filter(pk=run.pk).update(
            found=0, exalated=0, skipped=0, message="Started again: its first worker stopped."
        )
        run.refresh_from_db()

    def keep_lease(current: BulkExalate) -> None:
        BulkExalate.objects.filter(pk=run.pk, lease_token=run.lease_token).update(
            lease_until=timezone.now() + LEASE
        )

    try:
        run = run_bulk_exalate(run, gateway=gateway, progress=keep_lease)
    except NotConfigured as exc:
        BulkExalate.objects.filter(pk=run.pk).update(
            state=BulkState.FAILED, finished_at=timezone.now(), message=str(exc)[:500]
        )
    BulkExalate.objects.filter(pk=run.pk).update(lease_until=None, lease_token=None)
    run.refresh_from_db()
    return run


# --- how far it got -------------------------------------------------------------------------


@dataclass
class BulkProgress:
    """A run and the requests it started: matched and started come from the run; waiting,
    done and failed from the twins this side started while it ran."""

    run: BulkExalate
    waiting: int = 0
    done: int = 0
    failed: int = 0

    @property
    def running(self) -> bool:
        return self.run.state == BulkState.RUNNING

    @property
    def pending(self) -> bool:
        return self.running or self.waiting > 0

    @property
    def no_worker(self) -> bool:
        """Started on the page long ago and still not taken: no worker seems to run."""
        return (
            self.running
            and self.run.in_worker
            and self.run.lease_until is None
            and timezone.now() - self.run.started_at > NO_WORKER_AFTER
        )


def latest_bulk(connection: Connection) -> BulkProgress | None:
    run = connection.bulk_exalates.order_by("-started_at", "-id").first()
    if run is None:
        return None
    twins = Twin.objects.filter(
        connection=connection, origin=TwinOrigin.LOCAL, created_at__gte=run.started_at
    )
    if run.finished_at is not None:
        twins = twins.filter(created_at__lte=run.finished_at)
    # Counted by the database: a run may have started thousands, and the tab asks often.
    failed = Q(status=TwinStatus.BLOCKED) | Q(has_error=True)
    counts = twins.annotate(
        has_error=Exists(SyncError.objects.unresolved().filter(twin=OuterRef("pk")))
    ).aggregate(
        failed=Count("id", filter=failed),
        done=Count("id", filter=~failed & Q(synced_at__isnull=False)),
        waiting=Count(
            "id", filter=~failed & Q(synced_at__isnull=True) & ~Q(status=TwinStatus.CLOSED)
        ),
    )
    return BulkProgress(run, **counts)
