"""What the sync commands share: finding the connection named on the command line."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from connections.models import Connection


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
