"""`python manage.py check_xurrent`: does this node's Xurrent account answer?"""

from django.core.management.base import BaseCommand, CommandError

from xurrent.services import check_xurrent


class Command(BaseCommand):
    help = (
        "Check this node's Xurrent account: whether the API URL answers, the token is "
        "accepted, the account exists and calls are left. One line each; exits with 1 "
        "when something is wrong."
    )

    def handle(self, *args, **options):
        lines = check_xurrent()
        for line in lines:
            style = self.style.SUCCESS if line.ok else self.style.ERROR
            self.stdout.write(style(str(line)))
        failed = [line.label for line in lines if not line.ok]
        if failed:
            raise CommandError(f"Xurrent is not ready: {', '.join(failed)}.")
