"""Housekeeping: forget invitations that can never be accepted any more."""

from django.core.management.base import BaseCommand

from invitations.models import Invitation


class Command(BaseCommand):
    help = (
        "Delete invitations whose expiry has passed without anyone accepting them "
        "(revoked ones included). Accepted invitations stay: they record who accepted."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be deleted."
        )

    def handle(self, *args, dry_run: bool, **options):
        expired = Invitation.objects.expired()
        if dry_run:
            self.stdout.write(f"{expired.count()} expired invitation(s) would be deleted.")
            return
        deleted, _ = expired.delete()
        self.stdout.write(f"Deleted {deleted} expired invitation(s).")
