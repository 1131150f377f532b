"""Start syncing one Xurrent request on a connection."""

from connections.models import Connection
from sync.management.commands._common import OneRequestCommand
from sync.models import Twin
from sync.services.gateway import NotConfigured
from sync.services.scope import ScopeError, exalate_request


class Command(OneRequestCommand):
    help = (
        "Exalate one request: sync Xurrent request REQUEST_ID on the connection now, "
        "whatever the triggers say. The worker sends it."
    )
    refusals = (ScopeError, NotConfigured)
    done = "exalated"

    def act(self, connection: Connection, number: int) -> Twin:
        return exalate_request(connection, number)
