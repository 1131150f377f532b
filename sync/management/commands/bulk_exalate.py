"""Sync every current match of a connection's triggers."""

from django.core.management.base import BaseCommand, CommandError

from sync.management.commands._common import connection_named
from sync.models import BulkState
from sync.services.gateway import NotConfigured
from sync.services.scope import ScopeError, run_bulk_exalate, start_bulk_exalate


class Command(BaseCommand):
    help = (
        "Bulk exalate: go through every request that matches the connection's active "
        "triggers now and sync the ones not synced yet (the worker sends them). Safe to "
        "run twice: requests already synced are counted as skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("connection_id")

    def handle(self, *args, connection_id, **options):
        connection = connection_named(connection_id)
        try:
            run, started = start_bulk_exalate(connection)
        except ScopeError as exc:
            raise CommandError(str(exc)) from None
        if not started:
            raise CommandError(
                f"A bulk exalate of this connection is running already (started "
                f"{run.started_at:%Y-%m-%d %H:%M:%S}): found {run.found}, exalated "
                f"{run.exalated}, skipped {run.skipped}."
            )

        def progress(current):
            waits = ", waiting for the rate budget" if current.waiting_for_budget else ""
            self.stdout.write(
                f"found {current.found}, exalated {current.exalated}, "
                f"skipped {current.skipped}{waits}"
            )

        try:
            run = run_bulk_exalate(run, progress=progress)
        except NotConfigured as exc:
            run.state = BulkState.FAILED
            run.message = str(exc)
            run.save(update_fields=["state", "message"])
            raise CommandError(str(exc)) from None
        if run.state != BulkState.FINISHED:
            raise CommandError(f"Bulk exalate stopped: {run.message}")
        self.stdout.write(
            f"Bulk exalate finished: found {run.found}, exalated {run.exalated}, "
            f"skipped {run.skipped}."
        )
