"""Two live nodes test, deactivate, reactivate and delete their connection, and each sees
what the other did; a peer that was down hears about it once it is back."""

import re

import httpx
import pytest

from tests.e2e.conftest import log_in
from tests.livenodes import LiveNode, eventually, logged_in_client, post_form

pytestmark = pytest.mark.e2e


def pair(source: LiveNode, destination: LiveNode) -> tuple[str, str]:
    """The real handshake: initiate on `source`, accept the code on `destination`."""
    destination_uid = httpx.get(f"{destination.url}/api/v1/instance/").json()["uid"]
    code = source.shell(
        "from invitations.services.issuing import initiate_connection as i; "
        "c, _, code = i(name='Service desks', mode='script', local_short_name='alpha', "
        f"remote_short_name='beta', remote_url='{destination.url}', "
        f"remote_uid='{destination_uid}'); print(c.id); print(code)"
    )
    source_id, code = code.splitlines()[-2:]
    accepted = destination.manage("accept_invitation", code).stdout.strip().splitlines()[-1]
    destination_id, status = accepted.split()
    assert status == "active"
    return source_id, destination_id


def side(client: httpx.Client, connection_id: str) -> dict:
    """The markers of a connection page (what operators' scripts read)."""
    html = client.get(f"/connections/{connection_id}/").text
    root = re.search(r"<article[^>]*data-connection-id=[^>]*>", html).group(0)
    return {
        "status": re.search(r'data-status="(\w+)"', root).group(1),
        "remote": (re.search(r'data-remote-status="(\w+)"', root) or [None, None])[1],
        "untold": 'id="peer-not-told"' in html,
        "html": html,
    }


def flash(response: httpx.Response, client: httpx.Client) -> str:
    assert response.status_code == 302, response.text
    page = client.get(response.headers["location"]).text
    return " ".join(re.findall(r'<li class="message[^"]*"[^>]*>(.*?)</li>', page, re.S))


def test_two_nodes_test_deactivate_reactivate_and_delete_and_each_sees_the_other(live_nodes, page):
    a, b = live_nodes("a"), live_nodes("b")
    a_id, b_id = pair(a, b)
    on_a, on_b = logged_in_client(a), logged_in_client(b)
    assert side(on_a, a_id)["status"] == "active"

    text = flash(post_form(on_a, f"/connections/{a_id}/test/", {}), on_a)
    assert re.search(r"answered in \d+ ms; its side is active", text), text
    text = flash(post_form(on_b, f"/connections/{b_id}/test/", {}), on_b)
    assert "its side is active" in text, text

    # The page answers at once; A's worker tells B moments later.
    text = flash(post_form(on_a, f"/connections/{a_id}/deactivate/", {}), on_a)
    assert "The remote side will be told in a moment." in text
    assert side(on_a, a_id)["status"] == "deactivated"
    eventually(lambda: side(on_b, b_id)["remote"] == "deactivated")
    assert side(on_b, b_id) | {"html": ""} == {
        "status": "active",
        "remote": "deactivated",
        "untold": False,
        "html": "",
    }
    eventually(lambda: not side(on_a, a_id)["untold"])

    post_form(on_a, f"/connections/{a_id}/activate/", {})
    eventually(lambda: side(on_b, b_id)["remote"] == "active")
    post_form(on_b, f"/connections/{b_id}/deactivate/", {})
    eventually(lambda: side(on_a, a_id)["remote"] == "deactivated")

    # B goes down: A's change waits in the outbox, shown as "peer not told yet", with the
    # error of the worker's failed try...
    b.stop()
    text = flash(post_form(on_a, f"/connections/{a_id}/deactivate/", {}), on_a)
    assert "The remote side will be told in a moment." in text
    retrying = eventually(lambda: 'data-notification-state="retrying"' in side(on_a, a_id)["html"])
    assert retrying and "Last error: " in side(on_a, a_id)["html"]
    # ...survives A's restart (without its worker for now, so that nothing tells B yet)...
    a.stop()
    a.start(worker=False)
    b.start()
    on_a, on_b = logged_in_client(a), logged_in_client(b)
    assert side(on_a, a_id)["untold"]
    assert side(on_b, b_id)["remote"] == "active"
    # ...and reaches B once B is back, here by the operator's command, skipping the wait.
    assert "delivered 1" in a.manage("deliver_notifications", "--now").stdout
    assert side(on_b, b_id)["remote"] == "deactivated"
    assert not side(on_a, a_id)["untold"]
    a.start_worker()

    # Finally A deletes it, in a real browser, through the confirmation page.
    log_in(page, a.url, a.username, a.password)
    page.goto(f"{a.url}/connections/{a_id}/")
    page.click("#delete")
    page.wait_for_url(f"{a.url}/connections/{a_id}/delete/")
    assert "cannot be undone" in page.inner_text("main")
    page.click("#confirm-delete")
    page.wait_for_url(f"{a.url}/connections/")
    assert "is deleted. The remote side will be told in a moment." in page.inner_text(".messages")
    seen = eventually(lambda: (found := side(on_b, b_id))["status"] == "error" and found)
    assert seen["status"] == "error"
    assert seen["remote"] == "deleted"
    assert "deleted on the remote side" in seen["html"]
    text = flash(post_form(on_b, f"/connections/{b_id}/test/", {}), on_b)
    assert "does not know this connection" in text
    # The deleted side's history stays visible to staff in the admin.
    events = on_a.get("/admin/connections/connectionevent/?q=Service+desks").text
    assert "Connection deleted" in events
