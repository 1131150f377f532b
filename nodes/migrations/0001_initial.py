# General Settings move here from `connections` (the node is its own app now). The rows
# stay: the model is taken over in Django's state, then its table is renamed, and its
# content type (so the staff permissions that point at it) follows.

import uuid

from django.db import migrations, models


def move_content_type(app_from: str, app_to: str):
    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        ContentType.objects.using(db).filter(app_label=app_from, model="generalsettings").update(
            app_label=app_to
        )

    return move


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("connections", "0003_used_tokens"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="GeneralSettings",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("uid", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                        ("node_url", models.URLField(help_text="The public base address other nodes use to reach this node.", max_length=500, verbose_name="Exalate URL")),
                        ("short_name", models.CharField(help_text="Offered as this instance's short name when a connection is set up.", max_length=40, verbose_name="default local short name")),
                        ("platform", models.CharField(default="xurrent", editable=False, max_length=20)),
                        ("public", models.BooleanField(default=True, help_text="Only a public instance can initiate a connection: the other side must be able to reach it to accept.", verbose_name="instance is public")),
                        ("license", models.CharField(choices=[("evaluation", "Evaluation"), ("paid", "Paid"), ("free", "Free")], max_length=20)),
                        ("evaluation_ends_on", models.DateField(blank=True, help_text="After this day an evaluation counts as Free.", null=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "verbose_name": "general settings",
                        "verbose_name_plural": "general settings",
                        "db_table": "connections_generalsettings",
                    },
                ),
            ],
        ),
        migrations.AlterModelTable(name="generalsettings", table=None),
        migrations.RunPython(
            move_content_type("connections", "nodes"), move_content_type("nodes", "connections")
        ),
    ]
