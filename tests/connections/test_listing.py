"""The Connections page at scale: pages, search, filters, counts, and the small live
status answer for the pending rows shown."""

import json
import re
import secrets
import uuid
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections.models import Connection
from connections.views.listing import PAGE_SIZE


def ids_in(response) -> list[str]:
    return re.findall(r'data-connection-id="([0-9a-f-]{36})"', response.content.decode())


@pytest.fixture
def add(db):
    """`add(n, **fields)` creates n connections in one query, the first one the newest."""
    made = {"n": 0}

    def create(n: int, **fields) -> list[Connection]:
        now = timezone.now()
        start = made["n"]
        made["n"] += n
        values = {
            "mode": "script",
            "role": "source",
            "local_short_name": "acme",
            "remote_short_name": "globex",
            "remote_url": "https://globex.example",
            "status": "active",
        }
        return Connection.objects.bulk_create(
            Connection(
                name=fields.pop("name", None) or f"Connection {start + i}",
                created_at=now - timedelta(seconds=start + i),
                **{**values, **fields},
            )
            for i in range(n)
        )

    return create


def status_of(client, *items, **headers):
    return client.get("/connections/", {"status_of": ",".join(items)}, headers=headers)


# --- pages ------------------------------------------------------------------------------


def test_the_page_shows_one_page_of_connections_newest_first(admin_client, add):
    made = add(PAGE_SIZE + 5)
    response = admin_client.get("/connections/")
    assert response.status_code == 200
    assert ids_in(response) == [str(c.id) for c in made[:PAGE_SIZE]]
    html = response.content.decode()
    assert f"Showing 1–{PAGE_SIZE} of {PAGE_SIZE + 5}" in html
    assert "Page 1 of 2" in html


def test_the_second_page_shows_the_rest(admin_client, add):
    made = add(PAGE_SIZE + 5)
    response = admin_client.get("/connections/?page=2")
    assert ids_in(response) == [str(c.id) for c in made[PAGE_SIZE:]]


def test_page_links_keep_the_search_and_the_filters(admin_client, add):
    add(PAGE_SIZE + 1, name=None, mode="basic")
    html = admin_client.get("/connections/?q=connection&mode=basic").content.decode()
    assert 'href="?q=connection&amp;mode=basic&amp;page=2"' in html


@pytest.mark.parametrize("page", ["0", "-3", "abc", "", "1.5", "99999", "9" * 40])
def test_a_bad_page_number_still_shows_a_page(admin_client, add, page):
    made = add(PAGE_SIZE + 5)
    response = admin_client.get("/connections/", {"page": page})
    assert response.status_code == 200
    shown = ids_in(response)
    first, last = [str(c.id) for c in made[:PAGE_SIZE]], [str(c.id) for c in made[PAGE_SIZE:]]
    assert shown in (first, last)


def test_a_page_past_the_end_shows_the_last_page(admin_client, add):
    made = add(PAGE_SIZE + 5)
    response = admin_client.get("/connections/?page=99999")
    assert ids_in(response) == [str(c.id) for c in made[PAGE_SIZE:]]


def test_page_zero_shows_the_first_page(admin_client, add):
    made = add(PAGE_SIZE + 5)
    response = admin_client.get("/connections/?page=0")
    assert ids_in(response) == [str(c.id) for c in made[:PAGE_SIZE]]


# --- search and filters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "query"),
    [
        ("name", "Helpdesk Oslo", "desk os"),
        ("local_short_name", "oslo-desk", "OSLO-"),
        ("remote_short_name", "bergen-it", "bergen"),
        ("remote_url", "https://bergen.example.org", "bergen.example"),
    ],
)
def test_the_search_finds_a_connection_by_name_short_names_or_remote_url(
    admin_client, add, field, value, query
):
    add(3)
    (wanted,) = add(1, **{field: value})
    response = admin_client.get("/connections/", {"q": query})
    assert ids_in(response) == [str(wanted.id)]


def test_a_search_that_finds_nothing_says_so(admin_client, add):
    add(3)
    html = admin_client.get("/connections/?q=nowhere").content.decode()
    assert "No connection matches" in html
    assert "No connections yet" not in html


@pytest.mark.parametrize(
    ("parameter", "value", "other"),
    [("status", "error", "active"), ("mode", "basic", "script"), ("role", "destination", "source")],
)
def test_each_filter_shows_only_the_connections_it_names(
    admin_client, add, parameter, value, other
):
    add(4, **{parameter: other})
    wanted = add(2, **{parameter: value})
    response = admin_client.get("/connections/", {parameter: value})
    assert set(ids_in(response)) == {str(c.id) for c in wanted}


@pytest.mark.parametrize(
    "query", ["status=bogus", "mode=nope", "role=%00", "q=" + "x" * 5000, "status=&role=&mode="]
)
def test_an_unknown_filter_value_is_ignored(admin_client, add, query):
    made = add(3)
    response = admin_client.get(f"/connections/?{query}")
    assert response.status_code == 200
    if not query.startswith("q="):
        assert len(ids_in(response)) == len(made)


def test_the_page_counts_the_connections_in_each_status(admin_client, add):
    add(3, status="active")
    add(2, status="pending")
    add(1, status="error", mode="basic")
    html = admin_client.get("/connections/").content.decode()
    counts = dict(re.findall(r'data-status-count="(\w+)"[^>]*>\w+ <span class="count">(\d+)', html))
    assert counts == {"pending": "2", "active": "3", "deactivated": "0", "error": "1"}
    assert '<span class="count" data-count="all">6</span>' in html


def test_the_counts_follow_the_search_and_the_other_filters(admin_client, add):
    add(3, status="active", mode="script")
    add(1, status="error", mode="basic")
    html = admin_client.get("/connections/?mode=basic&status=active").content.decode()
    counts = dict(re.findall(r'data-status-count="(\w+)"[^>]*>\w+ <span class="count">(\d+)', html))
    assert counts["error"] == "1"
    assert counts["active"] == "0"


def test_a_connection_awaiting_confirmation_is_marked_pending(admin_client, add):
    (c,) = add(
        1,
        status="pending",
        remote_uid=uuid.uuid4(),
        remote_connection_id=str(uuid.uuid4()),
        shared_secret=secrets.token_urlsafe(32),
    )
    html = admin_client.get("/connections/").content.decode()
    assert f'data-connection-id="{c.id}" data-status="pending" data-state="confirming"' in html
    assert "Accepted, waiting for confirmation" in html


# --- cost ---------------------------------------------------------------------------------


def test_the_page_costs_the_same_queries_for_5_or_200_connections(admin_client, add):
    add(5, status="pending")
    with CaptureQueriesContext(db_connection) as few:
        admin_client.get("/connections/?q=connection&status=pending")
    # Counted at once: the next request clears the log the context reads from.
    queries_for_few = len(few.captured_queries)
    add(195, status="pending")
    with CaptureQueriesContext(db_connection) as many:
        response = admin_client.get("/connections/?q=connection&status=pending")
    assert len(many.captured_queries) == queries_for_few
    assert queries_for_few > 0
    assert len(ids_in(response)) == PAGE_SIZE


def test_the_page_stays_small_at_2000_connections(admin_client, add, django_assert_max_num_queries):
    add(2000)
    with django_assert_max_num_queries(12):
        response = admin_client.get("/connections/")
    assert len(ids_in(response)) == PAGE_SIZE
    assert len(response.content) < 60_000


@pytest.mark.parametrize(
    ("query", "total", "counts"),
    [({}, 63, 1), ({"status": "error"}, 3, 1), ({"q": "connection"}, 63, 2)],
)
def test_the_page_counts_no_more_than_its_status_counts(admin_client, add, query, total, counts):
    add(PAGE_SIZE + 10)
    add(3, status="error")
    with CaptureQueriesContext(db_connection) as queries:
        response = admin_client.get("/connections/", {**query, "page": 2})
    counting = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    # The status counts (one aggregate query; with a search, one among the matches and one
    # of all): the paginator takes its total from them instead of counting again.
    assert len(counting) == counts, counting
    page_2 = total - PAGE_SIZE if total > PAGE_SIZE else total
    assert len(ids_in(response)) == page_2
    if total > PAGE_SIZE:
        assert f"of {total}</span>" in response.content.decode()


# --- the rows fragment (older scripts) ----------------------------------------------------


def test_the_rows_fragment_answers_the_current_page_only(admin_client, add):
    made = add(PAGE_SIZE + 5)
    response = admin_client.get("/connections/?fragment=rows&page=2")
    assert "<html" not in response.content.decode()
    assert ids_in(response) == [str(c.id) for c in made[PAGE_SIZE:]]


# --- the live status answer -----------------------------------------------------------------


def test_the_status_answer_is_empty_when_nothing_changed(admin_client, add):
    rows = add(3, status="pending")
    response = status_of(admin_client, *(str(c.id) for c in rows))
    assert response.status_code == 200
    assert response.json() == {}
    assert response["ETag"]
    assert "no-cache" in response["Cache-Control"]


def test_the_status_answer_holds_only_the_rows_that_changed(admin_client, add):
    first, second = add(2, status="pending")
    first.activate()
    response = status_of(admin_client, str(first.id), str(second.id))
    answer = response.json()
    assert list(answer) == [str(first.id)]
    assert answer[str(first.id)]["status"] == "active"
    html = answer[str(first.id)]["html"]
    assert html.startswith(f'<tr data-connection-id="{first.id}" data-status="active"')
    assert ">Active</span>" in html


def test_the_status_answer_tells_when_a_pending_row_awaits_confirmation(admin_client, add):
    (c,) = add(1, status="pending")
    Connection.objects.filter(pk=c.pk).update(
        remote_uid=uuid.uuid4(),
        remote_connection_id=str(uuid.uuid4()),
        shared_secret=secrets.token_urlsafe(32),
    )
    answer = status_of(admin_client, f"{c.id}:pending").json()
    assert answer[str(c.id)]["status"] == "pending"
    assert "Accepted, waiting for confirmation" in answer[str(c.id)]["html"]
    assert status_of(admin_client, f"{c.id}:confirming").json() == {}


def test_the_status_answer_says_when_a_row_was_deleted(admin_client, add):
    (c,) = add(1, status="pending")
    gone = str(c.id)
    c.delete()
    answer = status_of(admin_client, gone).json()
    assert answer == {gone: {"status": "deleted", "state": "deleted", "html": ""}}


def test_the_status_answer_is_not_modified_when_the_etag_matches(admin_client, add):
    rows = add(2, status="pending")
    asked = [str(c.id) for c in rows]
    etag = status_of(admin_client, *asked)["ETag"]
    response = status_of(admin_client, *asked, **{"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""

    rows[0].activate()
    response = status_of(admin_client, *asked, **{"If-None-Match": etag})
    assert response.status_code == 200
    assert list(response.json()) == [asked[0]]


@pytest.mark.parametrize("junk", ["", "nope", "123", "../etc", "%00", "' OR 1=1 --", ":::,,,"])
def test_the_status_answer_ignores_bad_ids(admin_client, add, junk):
    (c,) = add(1, status="pending")
    c.activate()
    response = status_of(admin_client, junk, str(c.id))
    assert response.status_code == 200
    assert list(response.json()) == [str(c.id)]


def test_the_status_answer_reads_at_most_a_page_of_ids(admin_client, add):
    rows = add(PAGE_SIZE + 10, status="pending")
    Connection.objects.update(status="active")
    answer = status_of(admin_client, *(str(c.id) for c in rows)).json()
    assert len(answer) == PAGE_SIZE


def test_the_status_answer_stays_small_at_2000_connections(
    admin_client, add, django_assert_max_num_queries
):
    add(1999)
    (pending,) = add(1, status="pending")
    with django_assert_max_num_queries(8):
        quiet = status_of(admin_client, str(pending.id))
    assert quiet.content == b"{}"
    pending.activate()
    changed = status_of(admin_client, str(pending.id))
    assert len(changed.content) < 1500
    assert json.loads(changed.content)[str(pending.id)]["status"] == "active"


# --- who may look -------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?fragment=rows", "?status_of=" + str(uuid.uuid4())])
def test_an_anonymous_visitor_is_sent_to_log_in(client, db, query):
    response = client.get(f"/connections/{query}")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("query", ["", "?fragment=rows", "?status_of=" + str(uuid.uuid4())])
def test_a_user_without_the_view_permission_is_refused(client, django_user_model, query):
    client.force_login(django_user_model.objects.create_user("nobody", "", "pw-nobody-123456"))
    assert client.get(f"/connections/{query}").status_code == 403


def test_a_viewer_may_see_the_page_and_ask_about_statuses(viewer_client, add):
    (c,) = add(1, status="pending")
    assert viewer_client.get("/connections/").status_code == 200
    assert status_of(viewer_client, str(c.id)).status_code == 200


def test_a_row_says_when_its_peer_has_not_been_told_yet(admin_client, node, settings):
    from connections.services import actions, outbox
    from tests.connections.peers import FakePeer, make_paired

    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    peer = FakePeer().start()
    try:
        told = make_paired(name="Told", remote_url=peer.url)
        untold = make_paired(name="Untold", remote_url=peer.url)
        actions.deactivate_connection(untold)

        def row(connection) -> str:
            html = admin_client.get("/connections/").content.decode()
            return html.split(f'data-connection-id="{connection.id}"')[1].split("</tr>")[0]

        assert "peer not told yet" in row(untold)
        assert "peer not told yet" not in row(told)
        assert outbox.deliver_pending_notifications().delivered == 1
        assert "peer not told yet" not in row(untold)
    finally:
        peer.stop()
