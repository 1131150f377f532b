"""What the sync commands share: finding the connection and the request named on the
command line, and the shape of exalate and unexalate."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from connections.models import Connection
from sync.models import Twin
from sync.services.scope import ScopeError


def connection_named(connection_id: str) -> Connection:
    try:
        connection = Connection.objects.filter(pk=connection_id).first()
    except (ValidationError, ValueError):
        connection = None
    if connection is None:
        raise CommandError(f"No connection with the id {connection_id!r} on this node.")
    return connection


def request_number(text: str) -> int:
    value = text.strip().lstrip("#")
    if not value.isdigit() or int(value) < 1:
        raise CommandError(f"{text!r} is not a Xurrent request id (a whole number).")
    return int(value)


class OneRequestCommand(BaseCommand):
    """A command on one request of one connection (exalate, unexalate): it calls `act`,
    shows a refusal as the command's error and says what became of the twin."""

    refusals: tuple[type[Exception], ...] = (ScopeError,)
    done = ""  # "exalated": what the request is afterwards

    def add_arguments(self, parser):
        parser.add_argument("connection_id")
        parser.add_argument("request_id")

    def act(self, connection: Connection, number: int) -> Twin:
        raise NotImplementedError

    def handle(self, *args, connection_id, request_id, **options):
        connection = connection_named(connection_id)
        number = request_number(request_id)
        try:
            twin = self.act(connection, number)
        except self.refusals as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Request #{number} is {self.done} (twin {twin.twin_id}).")
