# Shared secrets and outbox signing keys are kept encrypted (nodes/encryption.py).

import nodes.fields
from django.db import migrations

from nodes import encryption

COLUMNS = [("Connection", "shared_secret"), ("PeerNotification", "signing_key")]


def encrypt_plain_secrets(apps, schema_editor):
    for model_name, field_name in COLUMNS:
        column = encryption.Column.of(apps.get_model("connections", model_name), field_name)
        encryption.rewrite_column(schema_editor.connection, column, encryption.encrypt_if_plain)


def decrypt_secrets(apps, schema_editor):
    # Back to the plain 64-character column: a secret no configured key opens cannot go
    # there, so stop rather than lose it.
    for model_name, field_name in COLUMNS:
        column = encryption.Column.of(apps.get_model("connections", model_name), field_name)
        report = encryption.rewrite_column(
            schema_editor.connection, column, encryption.decrypt_to_plain
        )
        if report.unreadable:
            raise RuntimeError(
                f"{report.unreadable} value(s) of {column.table}.{column.column} cannot be "
                "decrypted with the configured keys; set the key they were encrypted with "
                "and migrate backwards again."
            )


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0005_field_rules_on_the_fields"),
    ]

    operations = [
        migrations.AlterField(
            model_name="connection",
            name="shared_secret",
            field=nodes.fields.EncryptedTextField(blank=True, editable=False),
        ),
        migrations.AlterField(
            model_name="peernotification",
            name="signing_key",
            field=nodes.fields.EncryptedTextField(blank=True, editable=False),
        ),
        migrations.RunPython(encrypt_plain_secrets, decrypt_secrets),
    ]
