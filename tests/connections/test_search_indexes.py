"""On PostgreSQL, searching connections reads trigram indexes (migration 0009), not every
row: the plans are checked on 10,000 connections that look like real ones."""

import secrets
import uuid
from datetime import timedelta

import pytest
from django.contrib.admin import site
from django.core.paginator import Paginator
from django.db import connection as db_connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections.models import Connection, ConnectionQuerySet

pytestmark = pytest.mark.postgres

COMPANIES = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka",
             "tyrell", "cyberdyne", "soylent", "vandelay", "oscorp", "aperture", "monarch",
             "gringotts", "dunder", "sterling", "pied", "massive"]  # fmt: skip
TEAMS = ["service desk", "ops", "hr", "facilities", "network", "security", "finance"]
PAGE_COLUMNS = ["name", "local_short_name", "remote_short_name", "remote_url"]
ADMIN_COLUMNS = [*PAGE_COLUMNS, "description", "remote_connection_id"]


@pytest.fixture
def ten_thousand_connections(db):
    now = timezone.now()
    secret = secrets.token_urlsafe(32)
    rows = []
    for number in range(10_000):
        ours = COMPANIES[number % len(COMPANIES)]
        theirs = COMPANIES[(number * 7 + 3) % len(COMPANIES)]
        team = TEAMS[number % len(TEAMS)]
        rows.append(
            Connection(
                name=f"{ours.title()} {team} to {theirs.title()} #{number}",
                description=f"Incidents of {theirs.title()}'s {team}, kept in sync with ours.",
                mode="script",
                role="source" if number % 2 else "destination",
                local_short_name=f"{ours}{number % 97}",
                remote_short_name=f"{theirs}{number % 89}",
                remote_url=f"https://{theirs}-{number}.example.com",
                remote_uid=uuid.uuid4(),
                remote_connection_id=str(uuid.uuid4()),
                status=["active", "active", "pending", "deactivated", "error"][number % 5],
                shared_secret=secret,
                created_at=now - timedelta(minutes=number),
            )
        )
    Connection.objects.bulk_create(rows, batch_size=2000)
    with db_connection.cursor() as cursor:
        # What autovacuum does to a table that grew: fresh statistics, and the rows that a
        # GIN index keeps in its pending list moved into the index proper.
        cursor.execute("ANALYZE connections_connection")
        for index in trigram_indexes():
            cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])


def trigram_indexes() -> set[str]:
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes "
            "WHERE tablename = 'connections_connection' AND indexdef LIKE '%gin_trgm_ops%'"
        )
        return {name for (name,) in cursor.fetchall()}


def test_each_searched_column_has_a_trigram_index(db):
    assert trigram_indexes() == {f"connection_{column}_trgm" for column in ADMIN_COLUMNS}


def explain(sql: str) -> str:
    with db_connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(line for (line,) in cursor.fetchall())


def test_a_search_on_the_connections_page_reads_the_indexes_not_the_table(
    ten_thousand_connections,
):
    matches = Connection.objects.matching("#4242").order_by("-created_at")
    plan = matches[:50].explain()
    assert "Seq Scan" not in plan, plan
    for column in PAGE_COLUMNS:
        assert f"Bitmap Index Scan on connection_{column}_trgm" in plan, plan
    assert [c.remote_url for c in matches] == ["https://sterling-4242.example.com"]


def test_the_page_counts_its_matches_through_the_indexes(ten_thousand_connections):
    among = ConnectionQuerySet.search_condition("vandelay7")
    with CaptureQueriesContext(db_connection) as queries:
        counts = Connection.objects.status_counts(among)
        Paginator(Connection.objects.filter(among), 50).count
    assert len(queries.captured_queries) == 3
    for query in queries.captured_queries:
        if "LIKE" in query["sql"]:
            plan = explain(query["sql"])
            assert "Seq Scan" not in plan, plan
            for column in PAGE_COLUMNS:
                assert f"Bitmap Index Scan on connection_{column}_trgm" in plan, plan
    # The indexes change how the rows are found, not which.
    expected = [
        c
        for c in Connection.objects.only("status", *PAGE_COLUMNS)
        if any("VANDELAY7" in getattr(c, column).upper() for column in PAGE_COLUMNS)
    ]
    assert counts["all"] == 10_000
    assert counts["matching"] == len(expected) > 50
    assert counts["active"] == sum(c.status == "active" for c in expected)


def test_the_admin_search_reads_the_indexes_of_all_six_columns(
    ten_thousand_connections, admin_user
):
    request = RequestFactory().get("/admin/connections/connection/", {"q": "sterling4"})
    request.user = admin_user
    model_admin = site._registry[Connection]
    found, _ = model_admin.get_search_results(request, Connection.objects.all(), "sterling4")
    plan = found.explain()
    assert "Seq Scan" not in plan, plan
    for column in ADMIN_COLUMNS:
        assert f"Bitmap Index Scan on connection_{column}_trgm" in plan, plan
    assert found.count() > 0
    some_id = Connection.objects.order_by("created_at").first().remote_connection_id[:8]
    by_id, _ = model_admin.get_search_results(request, Connection.objects.all(), some_id)
    assert "Seq Scan" not in by_id.explain()
    assert by_id.filter(remote_connection_id__startswith=some_id).exists()
