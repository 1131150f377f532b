"""A real browser on the Accept invitation page, and the source's page turning active."""

import re

import pytest

from tests.e2e.conftest import log_in
from tests.livenodes import initiate_between

pytestmark = pytest.mark.e2e


def test_accepting_in_the_browser_sets_up_the_connection_and_the_source_sees_it(
    nodes, page, browser
):
    a, b = nodes
    source_id, code = initiate_between(a, b, "Browser handshake")

    # A's admin watches the Connections page. Cookies belong to a host, not a port, so
    # A is opened as "localhost" to keep its login apart from B's on 127.0.0.1.
    a_url = a.url.replace("127.0.0.1", "localhost")
    log_in(page, a_url, a.username, a.password)
    source_row = page.locator(f'tr[data-connection-id="{source_id}"]')
    assert source_row.get_attribute("data-status") == "pending"
    page.evaluate("window.notReloaded = true")

    b_page = browser.new_page()
    try:
        log_in(b_page, b.url, b.username, b.password)
        b_page.get_by_role("link", name="Accept invitation").click()
        b_page.wait_for_url(f"{b.url}/connections/accept/")

        # A damaged code is refused at once and stays in the field.
        b_page.fill("textarea[name=code]", code[:-1])
        b_page.get_by_role("button", name="Review").click()
        assert "Copy the code again in full" in b_page.locator("#code-errors").inner_text()
        assert b_page.input_value("textarea[name=code]") == code[:-1]

        b_page.fill("textarea[name=code]", code)
        b_page.get_by_role("button", name="Review").click()
        assert b_page.locator("#review-name").inner_text() == "Browser handshake"
        assert b_page.locator("#review-source-short-name").inner_text() == "desk-a"
        assert b_page.input_value("input[name=local_short_name]") == "desk-b"
        b_page.fill("input[name=local_short_name]", "helpdesk-b")
        b_page.get_by_role("button", name="Confirm").click()

        b_page.wait_for_url(re.compile(rf"{re.escape(b.url)}/connections/[0-9a-f-]{{36}}/$"))
        assert "The connection is set up" in b_page.locator(".messages").inner_text()
        article = b_page.locator("[data-connection-id]").first
        assert article.get_attribute("data-status") == "active"
    finally:
        b_page.close()

    # A's page refreshes its rows by itself: no reload, no click.
    page.wait_for_selector(
        f'tr[data-connection-id="{source_id}"][data-status="active"]', timeout=15_000
    )
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#live-note").is_hidden()
