"""General Settings: read once per request, afresh outside one."""

from __future__ import annotations

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from connections.models import Connection
from nodes.models import GeneralSettings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The request signals below would close the database connection that holds the
    test's transaction (Django closes one found out of autocommit): on PostgreSQL the rest
    of the test then fails with "the connection is closed". The test client does the same."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def settings_queries(run) -> int:
    with CaptureQueriesContext(connection) as queries:
        run()
    return sum("generalsettings" in query["sql"] for query in queries.captured_queries)


def test_the_settings_are_read_once_in_a_request():
    GeneralSettings.load()
    request_started.send(sender=None)
    try:
        assert settings_queries(lambda: [GeneralSettings.load() for _ in range(5)]) == 1
    finally:
        request_finished.send(sender=None)


def test_outside_a_request_each_read_sees_the_database():
    GeneralSettings.load()
    assert settings_queries(lambda: [GeneralSettings.load() for _ in range(3)]) == 3


def test_a_change_saved_in_a_request_is_what_the_rest_of_it_reads():
    request_started.send(sender=None)
    try:
        node = GeneralSettings.load()
        node.short_name = "renamed"
        node.save()
        assert GeneralSettings.load().short_name == "renamed"
    finally:
        request_finished.send(sender=None)


def test_a_new_request_does_not_see_the_last_ones_settings():
    request_started.send(sender=None)
    first = GeneralSettings.load()
    request_finished.send(sender=None)
    GeneralSettings.objects.filter(pk=first.pk).update(short_name="elsewhere")
    request_started.send(sender=None)
    try:
        assert GeneralSettings.load().short_name == "elsewhere"
    finally:
        request_finished.send(sender=None)


def test_a_connection_page_reads_the_settings_at_most_once(admin_client, node):
    # A local connection: the page asks several times whether it is local.
    local = Connection.objects.create(
        name="Local",
        mode="script",
        role="source",
        local_short_name="a",
        remote_short_name="b",
        remote_uid=node.uid,
        remote_connection_id="x",
        shared_secret="k" * 43,
        status="active",
    )
    pages = []
    assert (
        settings_queries(lambda: pages.append(admin_client.get(f"/connections/{local.pk}/"))) <= 1
    )
    assert "this node (local connection)" in pages[0].content.decode()
