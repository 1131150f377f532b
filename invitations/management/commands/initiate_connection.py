"""Initiate a connection from the command line, as the web wizard does.

The same forms check the input, the same discovery asks the destination (behind the
same outbound guard), and the invitation code is printed as the last line, so scripts
can take it with `tail -n 1`. Any failure exits with status 1 and says why.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError
from django.utils import timezone

from invitations.services.issuing import initiate_connection
from invitations.wizard_forms import DestinationForm, DetailsForm, ModeForm, clean_short_name
from nodes.discovery import (
    DestinationError,
    discover_destination,
    missing_mode_reasons,
    offered_modes,
)
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

NOT_PUBLIC = (
    "This instance is not public (see its General Settings), so it cannot initiate a "
    "connection: the other side could never reach it to accept. Ask the other side's admin "
    "to initiate and accept their invitation here, or make this instance public."
)


def _form_errors(form) -> str:
    lines = []
    for field, errors in form.errors.items():
        where = OPTION_NAMES.get(field, "")
        for error in errors:
            lines.append(f"{where}: {error}" if where else error)
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
        node = GeneralSettings.load()
        if not node.public:
            raise CommandError(NOT_PUBLIC)

        where = DestinationForm(
            data={"destination_url": options["destination_url"], "no_url": options["no_url"]}
        )
        if not where.is_valid():
            raise CommandError(_form_errors(where))
        try:
            destination = discover_destination(
                where.cleaned_data["destination_url"] or "", node=node
            )
        except DestinationError as exc:
            raise CommandError(exc.message) from None

        modes = offered_modes(node, destination)
        mode_form = ModeForm(data={"mode": options["mode"]}, modes=modes)
        if not mode_form.is_valid():
            reasons = " ".join(missing_mode_reasons(node, destination))
            raise CommandError(
                f"--mode: choose one of: {', '.join(modes)}. {reasons}".strip()
                if options["mode"]
                else f"--mode is required: one of {', '.join(modes)}."
            )

        local = options["local_short_name"]
        remote = options["remote_short_name"]
        details = DetailsForm(
            data={
                "local_short_name": clean_short_name(node.short_name) if local is None else local,
                "remote_short_name": (
                    clean_short_name(destination.short_name) if remote is None else remote
                ),
                "name": options["name"],
                "description": options["description"],
            }
        )
        if not details.is_valid():
            raise CommandError(_form_errors(details))

        try:
            connection, invitation, code = initiate_connection(
                name=details.cleaned_data["name"],
                mode=mode_form.cleaned_data["mode"],
                local_short_name=details.cleaned_data["local_short_name"],
                remote_short_name=details.cleaned_data["remote_short_name"],
                description=details.cleaned_data["description"],
                remote_url=destination.url,
                remote_uid=destination.uid,
                remote_platform=destination.platform,
            )
        except IntegrityError:
            raise CommandError(
                "--name: a connection with this name was just created. Choose another name."
            ) from None
        # Printed here, once: only a hash of the token stays on this node.
        invitation.shown_at = timezone.now()
        invitation.save(update_fields=["shown_at"])

        self.stdout.write(
            f"Connection {connection.id} \u201c{connection.name}\u201d initiated in "
            f"{connection.get_mode_display()} mode towards {destination.label}; it is pending "
            "until the destination's admin accepts the invitation."
        )
        self.stdout.write(
            f"The invitation code is valid until {invitation.expires_at:%Y-%m-%d %H:%M} UTC "
            "and is shown only now. Invitation code:"
        )
        self.stdout.write(code)
