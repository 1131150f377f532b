"""Encrypt every stored secret again with the first key of EXALATE_SECRET_KEYS.

Run after putting a new key first in EXALATE_SECRET_KEYS (the old ones after it): once it
reports no secret left under an old key, the old keys can be removed. Safe to run while
the node serves, and again at any time: a secret already under the first key is left as
it is, and a secret changed meanwhile is never overwritten.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router, transaction

from nodes import encryption
from nodes.fields import EncryptedTextField


def encrypted_columns():
    """Every (model, field) whose column holds encrypted secrets, in every app."""
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


class Command(BaseCommand):
    help = (
        "Encrypt every secret stored in the database again with the first key of "
        "EXALATE_SECRET_KEYS, so that older keys can then be removed."
    )

    def handle(self, *args, **options):
        total = encryption.ColumnReport()
        for model, field in encrypted_columns():
            database = router.db_for_write(model)
            with transaction.atomic(using=database):
                report = encryption.rewrite_column(
                    connections[database],
                    encryption.Column.of(model, field.name),
                    encryption.rotate_if_needed,
                )
            label = f"{model._meta.label}.{field.name}"
            self.stdout.write(
                f"{label}: {report.changed} re-encrypted, {report.unchanged} already under "
                f"the first key, {report.unreadable} unreadable"
            )
            total.changed += report.changed
            total.unchanged += report.unchanged
            total.unreadable += report.unreadable
        if total.unreadable:
            raise CommandError(
                f"{total.unreadable} secret(s) cannot be decrypted with any key of "
                "EXALATE_SECRET_KEYS (or the key derived from SECRET_KEY) and were left as "
                "they are: add the key they were encrypted with to EXALATE_SECRET_KEYS and "
                "run this again. Do not remove any key until then."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Done: {total.changed} secret(s) re-encrypted with the first key, "
                f"{total.unchanged} already were. Keys after the first are no longer needed "
                "for them."
            )
        )
