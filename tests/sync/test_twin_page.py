"""A synced request's page and the links to both requests: Xurrent's page of this side's
request (from the account's API URL), and the other side's."""

import uuid

import pytest

from connections.models import Connection
from sync.models import EventAction, InboundEvent, SyncEvent
from sync.services.overview import replica_changes, request_page_url
from tests.sync.tabkit import make_twin, make_user, script_error, tab_url


def text_of(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize(
    ("api_url", "account", "page"),
    [
        ("https://api.xurrent.com/v1", "widget", "https://widget.xurrent.com/requests/12"),
        ("https://api.uk.xurrent.com/v1/", "widget", "https://widget.uk.xurrent.com/requests/12"),
        ("https://api.xurrent.qa/v1", "wdc", "https://wdc.xurrent.qa/requests/12"),
        ("http://127.0.0.1:8123/v1", "sim", "http://127.0.0.1:8123/requests/12"),
        (
            "https://proxy.example.com/xurrent/v1",
            "acme",
            "https://proxy.example.com/xurrent/requests/12",
        ),
        ("", "acme", ""),
    ],
)
def test_a_requests_page_is_found_from_the_accounts_api_url(api_url, account, page):
    assert request_page_url(api_url, account, 12) == page


def test_the_changes_of_a_replica_are_its_fields_that_differ_in_reading_order():
    changes = replica_changes(
        {"summary": "Printer", "status": "Open", "labels": ["a"]},
        {"summary": "Printer on fire", "status": "Open", "labels": ["a", "b"], "priority": "High"},
    )
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("summary", "Printer", "Printer on fire"),
        ("priority", "—", "High"),
        ("labels", '["a"]', '["a", "b"]'),
    ]
    long = replica_changes({}, {"description": "x" * 1000})[0]
    assert len(long.after) == 300 and long.after.endswith("…")


def test_the_tab_links_both_requests_of_a_local_connection_to_xurrents_pages(
    editor_client, connection
):
    twin = make_twin(connection, 7, remote_request_id="1007")
    html = text_of(editor_client.get(tab_url(connection)))
    assert 'href="http://127.0.0.1:8999/requests/7"' in html
    assert 'href="http://127.0.0.1:8999/requests/1007"' in html
    assert f'href="/connections/{connection.pk}/sync/twins/{twin.twin_id}/"' in html


def remote_connection(url: str) -> Connection:
    return Connection.objects.create(
        name="To Globex",
        mode="script",
        role="source",
        local_short_name="acme",
        remote_short_name="globex",
        status="active",
        remote_uid=uuid.uuid4(),
        remote_url=url,
        remote_connection_id=str(uuid.uuid4()),
    )


def test_another_nodes_request_links_to_its_twin_page_there(editor_client, sides):
    remote = remote_connection("https://globex.example.com")
    twin = make_twin(remote, 7, remote_request_id="88")
    html = text_of(editor_client.get(tab_url(remote, "twin", twin_id=twin.twin_id)))
    there = (
        f"https://globex.example.com/connections/{remote.remote_connection_id}/sync/twins/"
        f"{twin.twin_id}/"
    )
    assert f'href="{there}"' in html and "its page on the other node" in html
    assert 'href="http://127.0.0.1:8999/requests/7"' in html


def test_a_private_nodes_request_is_shown_without_a_link(editor_client, sides):
    remote = remote_connection("")
    twin = make_twin(remote, 7, remote_request_id="88")
    html = text_of(editor_client.get(tab_url(remote, "twin", twin_id=twin.twin_id)))
    assert '<dd id="remote-request">#88' in html


def test_the_twin_page_shows_what_each_sync_changed_both_ways(editor_client, connection):
    twin = make_twin(
        connection,
        7,
        remote_request_id="1007",
        last_seq_sent=2,
        baseline={"summary": "Printer on fire", "priority": "High"},
        received={"summary": "Printer on fire", "status": "In Progress"},
    )
    SyncEvent.objects.create(
        connection=connection,
        twin=twin,
        seq=1,
        previous=None,
        replica={"summary": "Printer", "priority": "High"},
        state="applied",
    )
    SyncEvent.objects.create(
        connection=connection,
        twin=twin,
        seq=2,
        previous={"summary": "Printer", "priority": "High"},
        replica={"summary": "Printer on fire", "priority": "High"},
        state="failed",
        last_error="The other side refused it.",
    )
    InboundEvent.objects.create(
        connection=connection,
        uuid=uuid.uuid4(),
        twin=twin,
        seq=1,
        previous={"summary": "Printer on fire"},
        replica={"summary": "Printer on fire", "status": "In Progress"},
        body_digest="x",
        state="applied",
    )
    SyncEvent.objects.create(
        connection=connection, twin=twin, seq=3, action=EventAction.UNEXALATE, state="queued"
    )
    html = text_of(editor_client.get(tab_url(connection, "twin", twin_id=twin.twin_id)))
    assert 'data-direction="out" data-seq="2" data-state="failed"' in html
    assert "<del>Printer</del></td><td><ins>Printer on fire</ins>" in html
    assert 'data-direction="in" data-seq="1" data-state="applied"' in html
    assert '<span class="muted">—</span></td><td><ins>In Progress</ins>' in html
    assert "The other side refused it." in html
    assert 'data-seq="3" data-state="queued"' in html and "Unexalated" in html
    assert "&quot;priority&quot;: &quot;High&quot;" in html  # the last replica sent, whole


def test_a_twin_page_shows_its_errors_with_retry_for_an_editor_only(
    client, editor, viewer, connection
):
    twin = make_twin(connection, 7)
    script_error(twin)
    client.force_login(editor)
    url = tab_url(connection, "twin", twin_id=twin.twin_id)
    assert 'class="retry"' in text_of(client.get(url))
    client.force_login(viewer)
    html = text_of(client.get(url))
    assert "NameError" in html and 'class="retry"' not in html


def test_a_twin_of_another_connection_is_not_found_here(editor_client, sides):
    a, b = sides
    twin = make_twin(b, 7)
    assert editor_client.get(tab_url(a, "twin", twin_id=twin.twin_id)).status_code == 404


def test_a_synced_request_shows_its_history_after_a_real_sync(admin_client, pair):
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject="Printer", category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.sync()
    pair.a.xurrent.human_updates(request["id"], subject="Printer on fire")
    pair.a.notice(request["id"])
    pair.sync()
    twin = pair.a.connection.twins.get()
    html = text_of(admin_client.get(tab_url(pair.a.connection, "twin", twin_id=twin.twin_id)))
    assert 'data-direction="out" data-seq="2" data-state="applied"' in html
    assert "<del>Printer</del></td><td><ins>Printer on fire</ins>" in html
    copy = pair.b.connection.twins.get()
    assert copy.twin_id == twin.twin_id
    html = text_of(admin_client.get(tab_url(pair.b.connection, "twin", twin_id=twin.twin_id)))
    assert 'data-direction="in" data-seq="2" data-state="applied"' in html
    tab = text_of(admin_client.get(tab_url(pair.a.connection)))
    assert 'data-status="open"' in tab and "#2 applied" in tab


def test_a_twin_page_needs_the_permission_to_view_connections(client, connection):
    twin = make_twin(connection, 7)
    url = tab_url(connection, "twin", twin_id=twin.twin_id)
    assert client.get(url).status_code == 302
    client.force_login(make_user("nobody"))
    assert client.get(url).status_code == 403
