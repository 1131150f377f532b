"""Send the outbox: tell peers what this side did, retrying with backoff until they hear it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError, CommandParser

from connections.services import outbox
from connections.services.outbox import deliver_pending_notifications, purge_settled_notifications
from exalate_site.resilience import run_until_stopped

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Deliver the notifications peers have not received yet (status changes, deletions). "
        "Safe to run from several servers at once, e.g. every minute from cron, or with --loop. "
        "Settled notifications older than 30 days are removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--now",
            action="store_true",
            help="Also send notifications whose next retry is still ahead "
            "(for when you know the peer is back).",
        )
        parser.add_argument(
            "--loop",
            action="store_true",
            help="Keep running, looking for due notifications every --interval seconds.",
        )
        parser.add_argument("--interval", type=float, default=10.0)
        parser.add_argument("--batch-size", type=int, default=outbox.BATCH_SIZE)

    def handle(self, *args, now: bool, loop: bool, interval: float, batch_size: int, **options):
        if batch_size < 1 or interval <= 0:
            raise CommandError("--batch-size and --interval must be positive numbers.")
        if loop:
            self.deliver_in_loop(batch_size=batch_size, now=now, interval=interval)
        else:
            self.deliver(batch_size=batch_size, now=now, always_report=True)

    def deliver(self, *, batch_size: int, now: bool, always_report: bool) -> None:
        report = deliver_pending_notifications(batch_size=batch_size, ignore_backoff=now)
        purge_settled_notifications()
        if report.attempted or always_report:
            self.stdout.write(
                f"delivered {report.delivered}, to retry {report.retrying}, "
                f"failed for good {report.failed}"
            )

    def deliver_in_loop(
        self,
        *,
        batch_size: int,
        now: bool,
        interval: float,
        sleep: Callable[[float], None] = time.sleep,
        max_rounds: int | None = None,
    ) -> None:
        """Deliver every `interval` seconds; a database or cache outage is waited out (with a
        log line when it starts and one when it ends), never the end of the loop."""
        ignore_backoff = now

        def one_round() -> None:
            nonlocal ignore_backoff
            self.deliver(batch_size=batch_size, now=ignore_backoff, always_report=False)
            # --now is for the first round that gets through, not one lost to an outage.
            ignore_backoff = False

        run_until_stopped(
            one_round, interval=interval, logger=logger, sleep=sleep, max_rounds=max_rounds
        )
