"""The Connections page refreshes its rows by itself while a connection is pending."""

from django.templatetags.static import static


def test_the_rows_fragment_carries_each_connection_and_its_status(viewer_client, invite):
    connection, _code = invite()
    response = viewer_client.get("/connections/?fragment=rows")
    text = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in text
    assert f'data-connection-id="{connection.id}" data-status="pending"' in text
    assert "no-cache" in response["Cache-Control"]


def test_the_list_polls_only_while_something_is_pending(viewer_client, invite):
    connection, _code = invite()
    page = viewer_client.get("/connections/").content.decode()
    assert static("js/live-status.js") in page
    assert 'data-refresh-url="/connections/?fragment=rows"' in page
    assert 'id="live-note">' in page  # shown: the script keeps it in step afterwards

    connection.activate()
    page = viewer_client.get("/connections/").content.decode()
    assert 'id="live-note" hidden>' in page


def test_the_rows_fragment_needs_a_login(client, db):
    response = client.get("/connections/?fragment=rows")
    assert response.status_code == 302
