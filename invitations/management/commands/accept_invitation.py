"""Accept an invitation code from the command line, like the Accept invitation page."""

from django.core.management.base import BaseCommand, CommandError

from connections.services.actions import tell_peer_now
from invitations.services.accepting import AcceptError, accept_invitation


class Command(BaseCommand):
    help = (
        "Accept an invitation code made on another node (or on this one, for a local "
        "connection). Prints the new connection's id and status."
    )

    def add_arguments(self, parser):
        parser.add_argument("code", help="The invitation code, in full.")
        parser.add_argument(
            "--local-short-name",
            help="This instance's short name in the connection (default: the one in the code).",
        )

    def handle(self, *args, code: str, local_short_name: str | None, **options):
        try:
            result = accept_invitation(code, local_short_name=local_short_name)
        except AcceptError as error:
            raise CommandError(error.message) from None
        connection = result.connection
        if result.created:
            self.stdout.write(f"The connection “{connection.name}” is set up.")
            # No web request waits here: tell the issuer at once rather than leave it to a
            # worker that a scripted setup may not run (the worker retries a failure).
            told = tell_peer_now(result.issuer_told)
            if not told.told:
                self.stdout.write(f"The other side has not heard it yet. {told.message}")
        else:
            self.stdout.write(f"This code was already accepted here: “{connection.name}”.")
        self.stdout.write(f"{connection.id} {connection.status}")
