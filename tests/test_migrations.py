"""Moving models between apps keeps their rows: a database made with the migrations of
before the move is migrated forward, and what it held is still there."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# (app, None) unapplies every migration of an app that did not exist then.
BEFORE_THE_MOVE = [
    ("connections", "0003_used_tokens"),
    ("invitations", "0001_initial"),
    ("nodes", None),
    ("sync", None),
]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    # The state of every other app (contenttypes, auth) at its latest, ours as targeted.
    ours = {app for app, _ in targets}
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] not in ours]
    return executor.loader.project_state(
        others + [target for target in targets if target[1] is not None]
    ).apps


def latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.fixture
def old_database():
    """The schema as it was before the move; the latest schema again afterwards."""
    apps = migrate(BEFORE_THE_MOVE)
    try:
        yield apps
    finally:
        migrate(latest())


@pytest.mark.django_db(transaction=True)
def test_moving_general_settings_and_rule_versions_keeps_their_rows(old_database):
    apps = old_database
    node_uid = uuid.uuid4()
    apps.get_model("connections", "GeneralSettings").objects.create(
        pk=1,
        uid=node_uid,
        node_url="https://desk.example.com",
        short_name="desk",
        license="paid",
        public=True,
    )
    connection_row = apps.get_model("connections", "Connection").objects.create(
        name="Desk to Ops",
        mode="script",
        role="source",
        local_short_name="desk",
        remote_short_name="ops",
    )
    apps.get_model("connections", "SyncRuleVersion").objects.create(
        connection=connection_row,
        number=1,
        outgoing="replica.summary = entity.summary",
        incoming="entity.summary = replica.summary",
    )
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    settings_type, _ = ContentType.objects.get_or_create(
        app_label="connections", model="generalsettings"
    )
    permission = Permission.objects.create(
        content_type=settings_type, codename="change_generalsettings_old", name="old"
    )
    group = apps.get_model("auth", "Group").objects.create(name="operators")
    group.permissions.add(permission)

    apps = migrate(latest())

    node = apps.get_model("nodes", "GeneralSettings").objects.get()
    assert (node.uid, node.short_name, node.license) == (node_uid, "desk", "paid")
    version = apps.get_model("sync", "SyncRuleVersion").objects.get()
    assert version.connection_id == connection_row.pk
    assert version.outgoing == "replica.summary = entity.summary"
    moved = apps.get_model("auth", "Group").objects.get(name="operators").permissions.get()
    assert (moved.content_type.app_label, moved.content_type.model) == (
        "nodes",
        "generalsettings",
    )
    tables = connection.introspection.table_names()
    assert "nodes_generalsettings" in tables and "sync_syncruleversion" in tables
    assert "connections_generalsettings" not in tables
