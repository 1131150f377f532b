"""Errors on the Sync tab: what each holds back, Retry and Resolve (POST, CSRF, the
permission to change connections), the other side's errors read-only."""

import pytest
from django.test import Client
from django.utils import timezone

from sync.models import EventState, PollState, SyncError, SyncEvent, TwinStatus
from sync.services.errors import record_error
from tests.sync.tabkit import make_twin, script_error, tab_url


def text_of(response) -> str:
    return response.content.decode()


@pytest.fixture
def blocked(connection):
    """Request #7 held by a script error, with one later change waiting behind it."""
    twin = make_twin(connection, 7, last_seq_sent=2)
    error = script_error(twin)
    SyncEvent.objects.create(
        connection=connection, twin=twin, seq=1, replica={"summary": "a"}, state="failed"
    )
    SyncEvent.objects.create(connection=connection, twin=twin, seq=2, replica={"summary": "b"})
    return twin, error


def test_an_error_shows_its_level_kind_line_request_and_what_it_holds_back(
    editor_client, connection, blocked
):
    twin, error = blocked
    html = text_of(editor_client.get(tab_url(connection)))
    assert (
        f'id="error-{error.pk}" data-error-id="{error.pk}" data-kind="script" '
        'data-level="request" data-blocking="true"' in html
    )
    assert "NameError: name &#x27;x&#x27; is not defined" in html
    assert "Script line 3: <code>replica.summary = x</code>" in html
    assert "Every change of request #7; 1 later change wait, until Retry or Resolve." in html
    assert f'href="/connections/{connection.pk}/sync/twins/{twin.twin_id}/">#7</a>' in html
    assert 'class="retry"' in html and 'class="resolve"' in html


def test_an_error_retried_by_itself_shows_its_next_try(editor_client, connection):
    twin = make_twin(connection, 8)
    next_try = timezone.now() + timezone.timedelta(minutes=5)
    record_error(
        connection=connection,
        twin=twin,
        place="produce",
        kind="xurrent",
        message="Reading request #8 failed: 503",
        next_try_at=next_try,
    )
    html = text_of(editor_client.get(tab_url(connection)))
    assert "Nothing yet: request #8 is retried by itself." in html
    assert f"Next try {timezone.localtime(next_try):%H:%M:%S}." in html


def test_retry_unblocks_the_twin_and_syncs_its_newest_state(
    editor_client, editor, connection, blocked
):
    twin, error = blocked
    response = editor_client.post(tab_url(connection, "retry", error_pk=error.pk), follow=True)
    assert "Retried: the newest state of request #7 is synced now" in text_of(response)
    assert response.redirect_chain[-1][0].endswith("/sync/#errors")
    error.refresh_from_db()
    twin.refresh_from_db()
    assert error.is_resolved and error.resolved_by == editor and error.resolution == "Retried."
    assert (twin.status, twin.dirty) == (TwinStatus.OPEN, True)
    # What waited behind the error is superseded: the newest state is read again instead.
    assert set(twin.events.values_list("state", flat=True)) == {EventState.SUPERSEDED}
    assert 'id="no-errors"' in text_of(response)


def test_resolve_closes_the_error_and_releases_the_twin_without_sending_again(
    editor_client, editor, connection, blocked
):
    twin, error = blocked
    response = editor_client.post(
        tab_url(connection, "resolve", error_pk=error.pk), {"note": "fixed by hand"}, follow=True
    )
    assert "Resolved: the error of request #7 is closed" in text_of(response)
    error.refresh_from_db()
    twin.refresh_from_db()
    assert error.is_resolved and error.resolution == "fixed by hand"
    assert twin.status == TwinStatus.OPEN and not twin.dirty
    assert twin.events.get(seq=1).state == EventState.FAILED  # what failed stays failed


def test_retry_and_resolve_refuse_a_viewer_and_change_nothing(client, viewer, connection, blocked):
    twin, error = blocked
    client.force_login(viewer)
    html = text_of(client.get(tab_url(connection)))
    assert f'id="error-{error.pk}"' in html and 'class="retry"' not in html
    for name in ("retry", "resolve"):
        assert client.post(tab_url(connection, name, error_pk=error.pk)).status_code == 403
    error.refresh_from_db()
    twin.refresh_from_db()
    assert not error.is_resolved and twin.status == TwinStatus.BLOCKED


def test_retry_needs_the_csrf_token(editor, connection, blocked):
    _twin, error = blocked
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    assert client.post(tab_url(connection, "retry", error_pk=error.pk)).status_code == 403
    error.refresh_from_db()
    assert not error.is_resolved


def test_retry_and_resolve_take_only_posts(editor_client, connection, blocked):
    _twin, error = blocked
    for name in ("retry", "resolve"):
        assert editor_client.get(tab_url(connection, name, error_pk=error.pk)).status_code == 405


def test_an_error_of_the_other_side_is_shown_read_only(editor_client, connection):
    twin = make_twin(connection, 9)
    error = record_error(
        connection=connection,
        twin=twin,
        place="remote",
        kind="peer",
        message="The incoming script failed: KeyError",
        line=4,
        remote=True,
    )
    html = text_of(editor_client.get(tab_url(connection)))
    assert 'data-remote="true"' in html and "Retried on the other side" in html
    assert "Nothing here: it is retried on the other side." in html
    for name in ("retry", "resolve"):
        response = editor_client.post(tab_url(connection, name, error_pk=error.pk), follow=True)
        assert "it is retried there" in text_of(response) or "it is resolved there" in text_of(
            response
        )
    error.refresh_from_db()
    assert not error.is_resolved


def test_an_error_of_another_connection_is_not_found_here(editor_client, sides):
    a, b = sides
    error = script_error(make_twin(b, 3))
    assert editor_client.post(tab_url(a, "retry", error_pk=error.pk)).status_code == 404
    assert editor_client.post(tab_url(a, "resolve", error_pk=error.pk)).status_code == 404
    error.refresh_from_db()
    assert not error.is_resolved


def test_retrying_an_error_dealt_with_already_changes_nothing(editor_client, connection, blocked):
    twin, error = blocked
    editor_client.post(tab_url(connection, "resolve", error_pk=error.pk))
    response = editor_client.post(tab_url(connection, "retry", error_pk=error.pk), follow=True)
    assert "This error was dealt with already." in text_of(response)
    twin.refresh_from_db()
    assert not twin.dirty


def test_retry_of_a_connection_error_brings_the_next_try_forward(editor_client, connection):
    twin = make_twin(connection, 4, last_seq_sent=1)
    later = timezone.now() + timezone.timedelta(minutes=20)
    event = SyncEvent.objects.create(
        connection=connection, twin=twin, seq=1, replica={}, next_try_at=later, attempts=3
    )
    error = record_error(
        connection=connection,
        place="send",
        kind="peer",
        message="The other side refused the node token (401).",
        next_try_at=later,
    )
    html = text_of(editor_client.get(tab_url(connection)))
    assert 'data-level="connection"' in html
    assert "The changes of this connection wait while it lasts" in html
    response = editor_client.post(tab_url(connection, "retry", error_pk=error.pk), follow=True)
    assert "Retried: the next try is now." in text_of(response)
    event.refresh_from_db()
    error.refresh_from_db()
    assert event.next_try_at <= timezone.now() and error.next_try_at <= timezone.now()
    assert not error.is_resolved  # it goes once a try works


def test_retry_from_a_twin_page_comes_back_to_it_but_never_to_another_site(
    editor_client, connection, blocked
):
    twin, error = blocked
    page = tab_url(connection, "twin", twin_id=twin.twin_id)
    assert 'name="next" value="' + page in text_of(editor_client.get(page))
    response = editor_client.post(tab_url(connection, "retry", error_pk=error.pk), {"next": page})
    assert response["Location"] == page
    other = script_error(twin)
    response = editor_client.post(
        tab_url(connection, "resolve", error_pk=other.pk), {"next": "https://evil.example/"}
    )
    assert response["Location"] == tab_url(connection) + "#errors"
    assert SyncError.objects.unresolved().count() == 0


def test_a_polling_error_of_this_nodes_account_is_shown_and_retried_at_once(
    editor_client, connection
):
    error = record_error(
        connection=None,
        place="poll",
        kind="network",
        message="Polling Xurrent failed; tried again in 30 s: unreachable",
        next_try_at=timezone.now() + timezone.timedelta(seconds=30),
    )
    html = text_of(editor_client.get(tab_url(connection)))
    assert f'id="error-{error.pk}"' in html and 'data-level="node"' in html
    assert "not noticed by polling while it lasts" in html
    response = editor_client.post(tab_url(connection, "retry", error_pk=error.pk), follow=True)
    assert "Retried: the next try is now." in text_of(response)
    assert PollState.account().requested


def test_retry_of_an_error_whose_request_was_unexalated_since_says_to_resolve_it(
    editor_client, connection, blocked
):
    twin, error = blocked
    twin.status = TwinStatus.CLOSED
    twin.save()
    response = editor_client.post(tab_url(connection, "retry", error_pk=error.pk), follow=True)
    assert "was unexalated since: there is nothing to retry" in text_of(response)
    error.refresh_from_db()
    assert not error.is_resolved
    editor_client.post(tab_url(connection, "resolve", error_pk=error.pk))
    error.refresh_from_db()
    assert error.is_resolved
