"""The node's one long-running background process (DESIGN.md §7, §11)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError, CommandParser

from connections.extensions import worker_tasks
from connections.services import outbox
from connections.services.outbox import deliver_pending_notifications, purge_settled_notifications
from exalate_site.resilience import run_until_stopped
from nodes.wakeup import wait_for_work

logger = logging.getLogger(__name__)
PURGE_EVERY = 3600.0


class Command(BaseCommand):
    help = (
        "Run the node's background work until stopped: tell peers what this side did "
        "(retrying with backoff until they hear it), and the sync queue of the apps that "
        "add one (polling Xurrent, sending and applying sync events). Woken at once on PostgreSQL "
        "(LISTEN/NOTIFY), polling twice a second on SQLite. Several may run against one "
        "PostgreSQL, on several servers; database and cache outages are waited out."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=outbox.BATCH_SIZE)
        parser.add_argument(
            "--idle",
            type=float,
            default=5.0,
            help="At most this many seconds between two looks at the queue when nothing "
            "wakes the worker (retries that come due are picked up then).",
        )

    def handle(self, *args, batch_size: int, idle: float, **options) -> None:
        if batch_size < 1 or idle <= 0:
            raise CommandError("--batch-size and --idle must be positive numbers.")
        self.stdout.write("Worker started: delivering notifications to peers. Ctrl-C stops it.")
        try:
            self.work(batch_size=batch_size, idle=idle)
        except KeyboardInterrupt:
            self.stdout.write("Worker stopped.")

    def work(
        self,
        *,
        batch_size: int,
        idle: float,
        max_rounds: int | None = None,
        wait: Callable[[float], None] = wait_for_work,
    ) -> None:
        last_purge = 0.0

        def one_round() -> None:
            nonlocal last_purge
            report = deliver_pending_notifications(batch_size=batch_size)
            if report.attempted:
                self.stdout.write(
                    f"delivered {report.delivered}, to retry {report.retrying}, "
                    f"failed for good {report.failed}"
                )
            if time.monotonic() - last_purge > PURGE_EVERY:
                purge_settled_notifications()
                last_purge = time.monotonic()
            # The apps built on connections (the sync queue) do their part of the round.
            busy = False
            for task in worker_tasks():
                busy = bool(task()) or busy
            if not busy:
                wait(idle)

        run_until_stopped(one_round, interval=0, logger=logger, max_rounds=max_rounds)
