# Sync rule versions move here from `connections` (sync is its own app now). The rows
# stay: the model is taken over in Django's state, then its table is renamed, and its
# content type (so the staff permissions that point at it) follows.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def move_content_type(app_from: str, app_to: str):
    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        ContentType.objects.using(db).filter(app_label=app_from, model="syncruleversion").update(
            app_label=app_to
        )

    return move


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("connections", "0003_used_tokens"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SyncRuleVersion",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("number", models.PositiveIntegerField()),
                        ("outgoing", models.TextField(blank=True)),
                        ("incoming", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("note", models.CharField(blank=True, max_length=200)),
                        ("connection", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="rule_versions", to="connections.connection")),
                        ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "ordering": ["connection", "-number"],
                        "db_table": "connections_syncruleversion",
                        "constraints": [
                            models.UniqueConstraint(fields=("connection", "number"), name="rule_version_number_unique"),
                        ],
                    },
                ),
            ],
        ),
        migrations.AlterModelTable(name="syncruleversion", table=None),
        migrations.RunPython(
            move_content_type("connections", "sync"), move_content_type("sync", "connections")
        ),
    ]
