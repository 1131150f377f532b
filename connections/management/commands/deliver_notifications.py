"""Send the outbox: tell peers what this side did, retrying with backoff until they hear it."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from connections.services.outbox import deliver_pending_notifications, purge_settled_notifications


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
        parser.add_argument("--batch-size", type=int, default=20)

    def handle(self, *args, now: bool, loop: bool, interval: float, batch_size: int, **options):
        if batch_size < 1 or interval <= 0:
            raise CommandError("--batch-size and --interval must be positive numbers.")
        while True:
            report = deliver_pending_notifications(batch_size=batch_size, ignore_backoff=now)
            purge_settled_notifications()
            if report.attempted or not loop:
                self.stdout.write(
                    f"delivered {report.delivered}, to retry {report.retrying}, "
                    f"failed for good {report.failed}"
                )
            if not loop:
                return
            now = False
            time.sleep(interval)
