# General Settings now belong to `nodes` and sync rule versions to `sync`: their tables
# were taken over there (nodes/0001, sync/0001); here they only leave Django's state.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("connections", "0003_used_tokens"),
        ("nodes", "0001_initial"),
        ("sync", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="GeneralSettings"),
                migrations.DeleteModel(name="SyncRuleVersion"),
            ],
        ),
    ]
