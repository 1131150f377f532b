"""Stop syncing one Xurrent request on a connection."""

from connections.models import Connection
from sync.management.commands._common import OneRequestCommand
from sync.models import Twin
from sync.services.scope import unexalate_request


class Command(OneRequestCommand):
    help = (
        "Unexalate one request: stop syncing Xurrent request REQUEST_ID on the connection, "
        "on both sides. It stays out of the triggers until it is exalated again."
    )
    done = "unexalated"

    def act(self, connection: Connection, number: int) -> Twin:
        return unexalate_request(connection, number)
