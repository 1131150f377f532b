"""First-start set-up: General Settings from the environment and an admin login."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from nodes.models import GeneralSettings


class Command(BaseCommand):
    help = "Seed this node's General Settings and create the 'admin' login on first run."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        node = GeneralSettings.load()
        # A node made before its Xurrent account was configured takes it from the
        # environment now; one whose admin set an account keeps it.
        node.fill_xurrent_account_from_env()
        node.fill_ai_assist_from_env()
        self.stdout.write(
            f"Node {node.short_name} ({node.uid}) at {node.base_url}, "
            f"licence {node.effective_license}, modes: {', '.join(node.available_modes())}"
        )
        self.stdout.write(
            f"Xurrent account {node.xurrent_account or '(none)'} at {node.xurrent_api_url}, "
            f"API token {'set' if node.has_xurrent_token else 'not set'}"
        )
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        # Printed once: the password is not stored anywhere else in clear.
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the login '{username}' with password: {password}\n"
                "Write it down now: it will not be shown again."
            )
        )
