"""Stop syncing one Xurrent request on a connection."""

from django.core.management.base import BaseCommand, CommandError

from sync.management.commands._common import connection_named, request_number
from sync.services.scope import ScopeError, unexalate_request


class Command(BaseCommand):
    help = (
        "Unexalate one request: stop syncing Xurrent request REQUEST_ID on the connection, "
        "on both sides. It stays out of the triggers until it is exalated again."
    )

    def add_arguments(self, parser):
        parser.add_argument("connection_id")
        parser.add_argument("request_id")

    def handle(self, *args, connection_id, request_id, **options):
        connection = connection_named(connection_id)
        number = request_number(request_id)
        try:
            twin = unexalate_request(connection, number)
        except ScopeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Request #{number} is unexalated (twin {twin.twin_id}).")
