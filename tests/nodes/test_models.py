"""General Settings: read once per request, afresh outside one."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from connections.models import Connection

# The functions the request signals call (sending the signals themselves would also close
# the test's database connection, as Django does between requests).
from nodes.models import GeneralSettings, end_request, start_request

pytestmark = pytest.mark.django_db


def settings_queries(run) -> int:
    with CaptureQueriesContext(connection) as queries:
        run()
    return sum("generalsettings" in query["sql"] for query in queries.captured_queries)


def test_the_settings_are_read_once_in_a_request():
    GeneralSettings.load()
    start_request()
    try:
        assert settings_queries(lambda: [GeneralSettings.load() for _ in range(5)]) == 1
    finally:
        end_request()


def test_outside_a_request_each_read_sees_the_database():
    GeneralSettings.load()
    assert settings_queries(lambda: [GeneralSettings.load() for _ in range(3)]) == 3


def test_a_change_saved_in_a_request_is_what_the_rest_of_it_reads():
    start_request()
    try:
        node = GeneralSettings.load()
        node.short_name = "renamed"
        node.save()
        assert GeneralSettings.load().short_name == "renamed"
    finally:
        end_request()


def test_the_webhook_policy_is_the_account_and_key_the_settings_hold():
    GeneralSettings.load()
    GeneralSettings.objects.update(xurrent_account="acme", xurrent_webhook_key="-----PEM-----")
    assert GeneralSettings.webhook_policy() == ("acme", "-----PEM-----")


def test_the_webhook_policy_of_a_new_node_comes_from_its_first_settings(settings):
    settings.XURRENT_ACCOUNT = "from-env"
    GeneralSettings.objects.all().delete()
    assert GeneralSettings.webhook_policy() == ("from-env", "")
    assert GeneralSettings.objects.get().xurrent_account == "from-env"


def test_the_webhook_policy_reads_no_more_than_a_request_has_read_already():
    GeneralSettings.load()
    GeneralSettings.objects.update(xurrent_account="acme")
    start_request()
    try:
        GeneralSettings.load()
        assert settings_queries(GeneralSettings.webhook_policy) == 0
        assert GeneralSettings.webhook_policy() == ("acme", "")
    finally:
        end_request()


def test_a_new_request_does_not_see_the_last_ones_settings():
    start_request()
    first = GeneralSettings.load()
    end_request()
    GeneralSettings.objects.filter(pk=first.pk).update(short_name="elsewhere")
    start_request()
    try:
        assert GeneralSettings.load().short_name == "elsewhere"
    finally:
        end_request()


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
