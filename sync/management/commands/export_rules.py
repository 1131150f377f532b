"""Export a connection's sync rules (both scripts and the triggers) as a JSON file."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sync.management.commands._common import connection_named
from sync.services.transfer import export_rules_json


class Command(BaseCommand):
    help = (
        "Write this side's sync rules of a connection (the scripts in force and the "
        "triggers) as JSON, to import onto another connection of the same mode with "
        "import_rules or on the sync rules page."
    )

    def add_arguments(self, parser):
        parser.add_argument("connection_id")
        parser.add_argument("--output", "-o", help="Write to this file instead of stdout.")

    def handle(self, *args, connection_id, output, **options):
        connection = connection_named(connection_id)
        text = export_rules_json(connection)
        if not output:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Could not write {output}: {exc.strerror}.") from None
        self.stderr.write(f"Sync rules of {connection.name} written to {output}.")
