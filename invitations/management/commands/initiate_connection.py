"""Initiate a connection from the command line, as the web wizard does.

`initiating.initiate()` runs the wizard's checks (its forms, the same discovery behind the
same outbound guard) and creates the connection; the invitation code is printed as the
last line, so scripts can take it with `tail -n 1`. Any failure exits with status 1 and
says why.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from invitations.services import initiating
from invitations.wizard_forms import UNUSABLE
from nodes.discovery import Destination
from nodes.models import GeneralSettings

OPTION_NAMES = {
    "destination_url": "--destination-url",
    "no_url": "--no-url",
    "mode": "--mode",
    "local_short_name": "--local-short-name",
    "remote_short_name": "--remote-short-name",
    "name": "--name",
    "description": "--description",
}


def refusal_message(refused: initiating.InitiateRefused, mode: str) -> str:
    """The refusal in the command's words: each error after the option it is about."""
    if refused.step == "mode":
        # No radio buttons here: say which modes there are, and why the others are not.
        modes = ", ".join(refused.modes)
        if not mode:
            return f"--mode is required: one of {modes}."
        return f"--mode: choose one of: {modes}. {' '.join(refused.notes)}".strip()
    lines = []
    for field, errors in refused.errors.items():
        for error in errors:
            # What the destination answered is about the destination, not the option.
            where = "" if error.code == UNUSABLE else OPTION_NAMES.get(field, "")
            lines.extend(f"{where}: {text}" if where else text for text in error.messages)
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Initiate a connection (this node becomes the source) and print its invitation "
        "code as the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--destination-url", metavar="URL", default="")
        parser.add_argument(
            "--no-url",
            action="store_true",
            help="The destination is in a private network: its admin accepts the invitation.",
        )
        parser.add_argument("--mode", default="", help="basic or script")
        parser.add_argument(
            "--local-short-name", default=None, help="Default: from the General Settings."
        )
        parser.add_argument(
            "--remote-short-name", default=None, help="Default: what the destination calls itself."
        )
        parser.add_argument("--name", default="", help="The connection name, unique on this node.")
        parser.add_argument("--description", default="")

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        argparse_exit = parser.exit

        def exit(status=0, message=None):
            # A usage error is a failure like any other: status 1, as documented.
            argparse_exit(1 if status else 0, message)

        parser.exit = exit
        return parser

    def handle(self, *args, **options):
        try:
            connection, invitation, code = initiating.initiate(
                GeneralSettings.load(),
                destination_url=options["destination_url"],
                no_url=options["no_url"],
                mode=options["mode"],
                local_short_name=options["local_short_name"],
                remote_short_name=options["remote_short_name"],
                name=options["name"],
                description=options["description"],
            )
        except initiating.InitiateRefused as refused:
            raise CommandError(refusal_message(refused, options["mode"])) from None
        # Printed here, once: only a hash of the token stays on this node.
        invitation.mark_shown()

        towards = Destination(url=connection.remote_url).label
        self.stdout.write(
            f"Connection {connection.id} \u201c{connection.name}\u201d initiated in "
            f"{connection.get_mode_display()} mode towards {towards}; it is pending "
            "until the destination's admin accepts the invitation."
        )
        self.stdout.write(
            f"The invitation code is valid until {invitation.expires_at:%Y-%m-%d %H:%M} UTC "
            "and is shown only now. Invitation code:"
        )
        self.stdout.write(code)
