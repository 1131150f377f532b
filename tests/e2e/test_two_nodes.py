"""Two real nodes (separate processes and SQLite files): initiate on A, accept on B."""

import html
import re

import pytest

from tests.livenodes import eventually, initiate_between, logged_in_client, post_form

pytestmark = pytest.mark.e2e


def row_status(page_html: str, connection_id: str) -> str | None:
    match = re.search(rf'data-connection-id="{connection_id}" data-status="(\w+)"', page_html)
    return match.group(1) if match else None


def test_accepting_on_b_through_its_pages_makes_both_sides_active(nodes):
    a, b = nodes
    source_id, code = initiate_between(a, b, "Service desks", description="Incidents both ways.")
    admin_a, admin_b = logged_in_client(a), logged_in_client(b)
    assert row_status(admin_a.get("/connections/").text, source_id) == "pending"

    form = admin_b.get("/connections/accept/")
    assert form.status_code == 200 and 'name="code"' in form.text
    review = post_form(admin_b, "/connections/accept/", {"code": code})
    assert review.status_code == 200
    assert "Service desks" in review.text and a.url in review.text
    done = post_form(
        admin_b,
        "/connections/accept/",
        {"code": code, "local_short_name": "helpdesk-b", "confirm": "1"},
    )
    assert done.status_code == 302, done.text
    destination_page = admin_b.get(done.headers["location"])
    assert "The connection is set up" in destination_page.text
    destination_id = re.search(r'data-connection-id="([0-9a-f-]+)"', destination_page.text)[1]
    assert row_status(destination_page.text, destination_id) == "active"
    assert row_status(admin_b.get("/connections/").text, destination_id) == "active"

    # B's page answered at once; B's worker confirms to A moments later. Then A's pages
    # show its side active too, and that it knows B's side.
    assert "The other side will be told in a moment" in destination_page.text
    eventually(lambda: row_status(admin_a.get("/connections/").text, source_id) == "active")
    source_page = admin_a.get(f"/connections/{source_id}/").text
    assert row_status(source_page, source_id) == "active"
    assert "helpdesk-b" in source_page


def test_both_nodes_become_active_through_their_web_pages_alone(nodes):
    a, b = nodes
    admin_a, admin_b = logged_in_client(a), logged_in_client(b)
    wizard = "/connections/initiate/"
    first = admin_a.get(wizard)
    current = re.search(r'name="([\w-]+-current_step)"', first.text)[1]
    steps = [
        ("destination", {"destination-destination_url": b.url}),
        ("mode", {"mode-mode": "basic"}),
        (
            "details",
            {
                "details-local_short_name": "desk-a",
                "details-remote_short_name": "desk-b",
                "details-name": "Made with the wizard",
                "details-description": "",
            },
        ),
    ]
    for step, fields in steps:
        answer = post_form(admin_a, wizard, {current: step, **fields})
        assert answer.status_code in (200, 302), answer.text
    # The last step answers with the code page itself: the code is kept nowhere (not even
    # in the session) to be shown by a later request.
    assert answer.status_code == 200
    code_page = answer.text
    code = html.unescape(re.search(r'id="invitation-code"[^>]*>\s*([^<\s]+)\s*<', code_page)[1])

    review = post_form(admin_b, "/connections/accept/", {"code": code})
    assert "Made with the wizard" in review.text
    done = post_form(
        admin_b,
        "/connections/accept/",
        {"code": code, "local_short_name": "desk-b", "confirm": "1"},
    )
    assert done.status_code == 302, done.text
    destination_page = admin_b.get(done.headers["location"]).text
    destination_id = re.search(r'data-connection-id="([0-9a-f-]+)"', destination_page)[1]
    assert row_status(destination_page, destination_id) == "active"

    listing_a = admin_a.get("/connections/").text
    source_id = re.search(
        r'data-connection-id="([0-9a-f-]+)"[^>]*>\s*<td><a[^>]*>Made with the wizard<', listing_a
    )[1]
    eventually(lambda: row_status(admin_a.get("/connections/").text, source_id) == "active")


def test_pasting_an_accepted_code_again_leads_to_the_same_connection(nodes):
    a, b = nodes
    _source_id, code = initiate_between(a, b, "Twice pasted")
    admin_b = logged_in_client(b)
    first = post_form(
        admin_b, "/connections/accept/", {"code": code, "local_short_name": "b", "confirm": "1"}
    )
    again = post_form(admin_b, "/connections/accept/", {"code": code})
    assert again.status_code == 302
    assert again.headers["location"] == first.headers["location"]
    assert admin_b.get("/connections/").text.count(">Twice pasted</a>") == 1


def test_a_code_that_is_no_longer_valid_is_explained_on_b_and_nothing_is_made(nodes):
    a, b = nodes
    source_id, old_code = initiate_between(a, b, "Regenerated")
    a.shell(
        "from connections.models import Connection\n"
        "from invitations.services.issuing import issue_invitation\n"
        f"issue_invitation(Connection.objects.get(pk={source_id!r}))"
    )
    admin_b = logged_in_client(b)
    page = post_form(
        admin_b, "/connections/accept/", {"code": old_code, "local_short_name": "b", "confirm": "1"}
    )
    assert page.status_code == 200
    assert "regenerate the invitation" in page.text
    assert old_code in page.text
    assert "Regenerated" not in admin_b.get("/connections/").text


def test_the_accept_invitation_command_accepts_a_code_from_another_node(nodes):
    a, b = nodes
    source_id, code = initiate_between(a, b, "From the command line")
    out = b.manage("accept_invitation", code, "--local-short-name", "cli-b").stdout
    destination_id, status = out.strip().splitlines()[-1].split()
    assert status == "active"
    # The command confirms to A itself (or B's worker, if it was quicker to take it).
    admin_a = logged_in_client(a)
    eventually(lambda: row_status(admin_a.get("/connections/").text, source_id) == "active")
    page = logged_in_client(b).get(f"/connections/{destination_id}/").text
    assert row_status(page, destination_id) == "active"
    failed = b.manage("accept_invitation", code[:-2], check=False)
    assert failed.returncode != 0
    assert "Copy the code again in full" in failed.stderr


def test_this_process_accepts_a_code_from_a_live_node_over_http(nodes, admin_client, settings):
    from connections.models import Connection
    from connections.services.outbox import deliver_pending_notifications
    from nodes.models import GeneralSettings

    a, _b = nodes
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True  # the live node listens on 127.0.0.1
    here = GeneralSettings.load()
    out = a.shell(
        "from invitations.services.issuing import initiate_connection as go\n"
        "c, _, code = go(name='To the test process', mode='script', local_short_name='desk-a', "
        "remote_short_name='tester', remote_url='http://testserver', "
        f"remote_uid={str(here.uid)!r})\n"
        "print(c.id)\nprint(code)"
    )
    source_id, code = out.splitlines()[-2:]
    done = admin_client.post(
        "/connections/accept/", {"code": code, "local_short_name": "tester", "confirm": "1"}
    )
    assert done.status_code == 302
    mine = Connection.objects.get(remote_connection_id=source_id)
    assert mine.status == "active" and mine.role == "destination"
    assert mine.remote_url == a.url
    assert len(mine.shared_secret) == 43
    # This process runs no worker: the confirmation waits in its outbox until delivered.
    admin_a = logged_in_client(a)
    assert row_status(admin_a.get("/connections/").text, source_id) == "pending"
    [confirmation] = mine.notifications.pending()
    assert confirmation.status == "active"
    assert deliver_pending_notifications().delivered == 1
    assert row_status(admin_a.get("/connections/").text, source_id) == "active"
