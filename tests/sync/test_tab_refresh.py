"""The Sync tab refreshes by itself: `?status_of=` answers only the parts that changed,
and says whether anything is still pending (the page stops asking when not)."""

import re

from django.templatetags.static import static

from sync.models import SyncEvent
from tests.sync.tabkit import make_twin, script_error, tab_url


def states(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-part="(\w+)" data-state="(\w+)"', html))


def ask(client, connection, shown: dict[str, str], **params):
    question = ",".join(f"{name}:{state}" for name, state in shown.items())
    response = client.get(tab_url(connection), {"status_of": question, **params})
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    return response.json()


def test_the_page_names_its_parts_and_whether_it_follows_the_sync(editor_client, connection):
    html = editor_client.get(tab_url(connection)).content.decode()
    assert set(states(html)) == {"bulk", "queue", "errors", "twins"}
    assert 'data-pending="false"' in html
    assert f'data-status-url="/connections/{connection.pk}/sync/"' in html
    assert static("js/sync-tab.js") in html  # with the hash of its content, as served
    assert '<meta http-equiv="refresh"' not in html  # nothing pending: no reload without JS


def test_nothing_changed_gives_no_parts_even_with_forms_in_them(editor_client, connection):
    script_error(make_twin(connection, 7))  # its Retry form carries a fresh CSRF token each time
    shown = states(editor_client.get(tab_url(connection)).content.decode())
    assert ask(editor_client, connection, shown) == {"parts": {}, "pending": False}


def test_only_the_part_that_changed_comes_back_with_its_new_state(editor_client, connection):
    twin = make_twin(connection, 7, last_seq_sent=1)
    shown = states(editor_client.get(tab_url(connection)).content.decode())
    SyncEvent.objects.create(connection=connection, twin=twin, seq=1, replica={"summary": "x"})
    answer = ask(editor_client, connection, shown)
    assert list(answer["parts"]) == ["queue"]
    assert answer["pending"] is True
    queue = answer["parts"]["queue"]
    assert queue["state"] != shown["queue"]
    assert re.search(r'data-count="waiting">1<', queue["html"])
    # Asked again with the new state: nothing more.
    shown["queue"] = queue["state"]
    assert ask(editor_client, connection, shown)["parts"] == {}


def test_a_pending_page_reloads_itself_without_javascript(editor_client, connection):
    twin = make_twin(connection, 7, last_seq_sent=1)
    SyncEvent.objects.create(connection=connection, twin=twin, seq=1, replica={})
    html = editor_client.get(tab_url(connection)).content.decode()
    assert 'data-pending="true"' in html
    assert '<noscript><meta http-equiv="refresh" content="15"></noscript>' in html


def test_a_part_not_asked_about_is_sent_and_nonsense_is_ignored(editor_client, connection):
    answer = ask(editor_client, connection, {"queue": "x"}, status_of_extra="1")
    assert set(answer["parts"]) == {"bulk", "queue", "errors", "twins"}
    response = editor_client.get(tab_url(connection), {"status_of": "nonsense,,:"})
    assert set(response.json()["parts"]) == {"bulk", "queue", "errors", "twins"}


def test_the_twins_part_follows_the_page_and_filter_of_the_page(editor_client, connection):
    for n in range(1, 31):
        make_twin(connection, n)
    html = editor_client.get(tab_url(connection), {"page": "2"}).content.decode()
    shown = states(html)
    assert 'data-local-id="5"' in html and 'data-local-id="30"' not in html
    assert ask(editor_client, connection, shown, page="2")["parts"] == {}
    answer = ask(editor_client, connection, shown, q="#30")
    assert list(answer["parts"]) == ["twins"]
    assert 'data-local-id="30"' in answer["parts"]["twins"]["html"]
    assert 'data-local-id="5"' not in answer["parts"]["twins"]["html"]


def test_a_viewer_follows_the_sync_too_but_a_stranger_does_not(client, viewer, connection):
    response = client.get(tab_url(connection), {"status_of": "queue:x"})
    assert response.status_code == 302
    client.force_login(viewer)
    answer = client.get(tab_url(connection), {"status_of": "queue:x"}).json()
    assert "queue" in answer["parts"]
