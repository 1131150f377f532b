"""Start syncing one Xurrent request on a connection."""

from django.core.management.base import BaseCommand, CommandError

from sync.management.commands._common import connection_named, request_number
from sync.services.gateway import NotConfigured
from sync.services.scope import ScopeError, exalate_request


class Command(BaseCommand):
    help = (
        "Exalate one request: sync Xurrent request REQUEST_ID on the connection now, "
        "whatever the triggers say. The worker sends it."
    )

    def add_arguments(self, parser):
        parser.add_argument("connection_id")
        parser.add_argument("request_id")

    def handle(self, *args, connection_id, request_id, **options):
        connection = connection_named(connection_id)
        number = request_number(request_id)
        try:
            twin = exalate_request(connection, number)
        except (ScopeError, NotConfigured) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Request #{number} is exalated (twin {twin.twin_id}).")
