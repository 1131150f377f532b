"""Import a sync rules file onto a connection: checked like a save, all or nothing."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sync.management.commands._common import connection_named
from sync.services.transfer import ImportRefused, import_rules, preview_import, read_rules_file


class Command(BaseCommand):
    help = (
        "Import a file written by export_rules onto a connection of the same mode: its "
        "scripts become a new version, its triggers are added or updated, and triggers the "
        "file does not have are switched off. A file whose scripts do not compile is "
        "refused whole. FILE '-' reads stdin."
    )

    def add_arguments(self, parser):
        parser.add_argument("connection_id")
        parser.add_argument("file")
        parser.add_argument(
            "--dry-run", action="store_true", help="Only say what the import would change."
        )

    def handle(self, *args, connection_id, file, dry_run, **options):
        connection = connection_named(connection_id)
        raw = self._read(file)
        try:
            rules_file = read_rules_file(raw)
            if dry_run:
                preview = preview_import(connection, rules_file)
            else:
                preview, version = import_rules(connection, rules_file)
        except ImportRefused as exc:
            raise CommandError(str(exc)) from None
        for line in preview.summary_lines():
            self.stdout.write(line)
        if dry_run:
            self.stdout.write("Dry run: nothing was imported.")
        elif version is not None:
            self.stdout.write(f"Imported as version {version.number}.")
        elif preview.changes_anything:
            self.stdout.write("Imported.")

    @staticmethod
    def _read(file: str) -> bytes:
        if file == "-":
            return sys.stdin.buffer.read()
        try:
            return Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"Could not read {file}: {exc.strerror}.") from None
