"""The Connections page in a real browser: one page of many connections, and the live
refresh asking only about the pending rows shown and replacing only the rows that changed."""

import time

import pytest

from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e

MAKE = """
from datetime import timedelta
from django.utils import timezone
from connections.models import Connection
now = timezone.now()
made = Connection.objects.bulk_create(
    Connection(
        name=f"Connection {i}", mode="script", role="source", local_short_name="acme",
        remote_short_name="globex", remote_url="https://globex.example",
        status="pending" if i in (1, 3, 70) else "active",
        created_at=now - timedelta(seconds=i),
    )
    for i in range(120)
)
print(",".join(str(c.id) for c in made))
"""


def activate(node, *ids: str) -> None:
    node.shell(
        "from connections.models import Connection; "
        f"Connection.objects.filter(pk__in={list(ids)!r}).update(status='active')"
    )


def test_the_page_shows_one_page_and_refreshes_only_the_pending_rows_that_changed(live_nodes, page):
    a = live_nodes("a")
    ids = a.shell(MAKE).splitlines()[-1].split(",")
    asked: list[str] = []
    page.on(
        "request",
        lambda request: asked.append(request.url) if "/connections/?" in request.url else None,
    )
    log_in(page, a.url, a.username, a.password)

    rows = page.locator("#connection-rows tr")
    assert rows.count() == 50
    assert page.locator("#pagination").inner_text().count("Page 1 of 3") == 1
    assert page.locator("#connection-rows").get_attribute("aria-live") is None
    # An unchanged row must stay the same element: mark it.
    page.evaluate(
        f"document.querySelector('tr[data-connection-id=\"{ids[3]}\"]').dataset.mark = 'kept'"
    )

    activate(a, ids[1])
    page.wait_for_selector(f'tr[data-connection-id="{ids[1]}"][data-status="active"]')
    assert page.locator("#live-changes").inner_text() == "1 connection changed."
    assert page.locator(f'tr[data-connection-id="{ids[3]}"]').get_attribute("data-mark") == "kept"
    assert page.locator("#live-note").is_visible()

    polled = [url for url in asked if "status_of=" in url]
    assert polled
    assert not [url for url in asked if "fragment=rows" in url]
    assert all(ids[70] not in url for url in polled)  # pending, but on page 3

    activate(a, ids[3])
    page.wait_for_selector(f'tr[data-connection-id="{ids[3]}"][data-status="active"]')
    page.wait_for_selector("#live-note", state="hidden")
    before = len(asked)
    time.sleep(7)
    assert len(asked) == before  # nothing pending shown: no more polling

    page.get_by_role("link", name="Next").click()
    page.wait_for_url(f"{a.url}/connections/?page=2")
    assert rows.count() == 50
