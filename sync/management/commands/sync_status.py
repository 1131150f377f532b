"""The twins of a connection: local id, remote id, status, last error."""

import json

from django.core.management.base import BaseCommand

from sync.management.commands._common import connection_named
from sync.services.status import connection_status


class Command(BaseCommand):
    help = (
        "Show the twins of a connection (local request id, remote request id, status, last "
        "error) and its queue. --json prints one JSON object."
    )

    def add_arguments(self, parser):
        parser.add_argument("connection_id")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, connection_id, as_json, **options):
        connection = connection_named(connection_id)
        status = connection_status(connection)
        if as_json:
            self.stdout.write(json.dumps(status, indent=2))
            return
        queue = status["queue"]
        self.stdout.write(
            f"{connection.name}: {len(status['twins'])} twins; queue: "
            + ", ".join(f"{name} {count}" for name, count in queue.items())
        )
        for twin in status["twins"]:
            error = f"  error: {twin['last_error']}" if twin["last_error"] else ""
            self.stdout.write(
                f"#{twin['local_id'] or '…'} ↔ {twin['remote_id'] or '…'}  {twin['status']}{error}"
            )
