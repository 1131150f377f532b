"""Add a trigger to a connection: a Xurrent filter query whose matches are synced."""

from django.core.management.base import BaseCommand, CommandError

from sync.management.commands._common import connection_named
from sync.services.scope import ScopeError, add_trigger


class Command(BaseCommand):
    help = (
        "Add a trigger to a connection: requests that match the Xurrent filter QUERY "
        "(e.g. 'category=incident&team=12') are synced whenever they change. Prints the "
        "trigger id."
    )

    def add_arguments(self, parser):
        parser.add_argument("connection_id")
        parser.add_argument("query")
        parser.add_argument("--note", default="", help="A word on what the trigger is for.")
        parser.add_argument("--inactive", action="store_true", help="Store it switched off.")

    def handle(self, *args, connection_id, query, note, inactive, **options):
        connection = connection_named(connection_id)
        try:
            trigger = add_trigger(connection, query, note=note)
        except ScopeError as exc:
            raise CommandError(str(exc)) from None
        if inactive:
            trigger.active = False
            trigger.save(update_fields=["active"])
        self.stdout.write(str(trigger.pk))
