"""An admin initiates a connection in headless Chromium, against a second live node."""

import re

import pytest
from playwright.sync_api import expect

from invitations.code import decode
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e


def node_uid(node) -> str:
    return node.shell(
        "from nodes.models import GeneralSettings as G; print(G.load().uid)"
    ).splitlines()[-1]


def test_an_admin_walks_the_wizard_copies_the_code_and_sees_the_connection_pending(
    live_nodes, page
):
    a, b = live_nodes("a"), live_nodes("b")
    log_in(page, a.url, a.username, a.password)

    page.get_by_role("link", name="Initiate connection").click()
    expect(page.locator("#wizard-step")).to_contain_text("Step 1 of 4")
    # A URL where no node answers stays on this step, says why and keeps what was typed.
    page.get_by_label("Destination instance URL").fill(f"{b.url}/no-node-here")
    page.locator("#wizard-next").click()
    expect(page.locator("#wizard-step")).to_contain_text("Step 1 of 4")
    expect(page.locator(".errorlist")).to_contain_text("not like an Exalate node")
    expect(page.locator(".errorlist")).to_contain_text("I don't have a URL")
    expect(page.get_by_label("Destination instance URL")).to_have_value(f"{b.url}/no-node-here")

    page.get_by_label("Destination instance URL").fill(b.url)
    page.locator("#wizard-next").click()

    expect(page.locator("#wizard-step")).to_contain_text("Step 2 of 4")
    expect(page.locator("#mode-is-final")).to_contain_text("The mode is final")
    page.locator("input[name='mode-mode'][value='script']").check()
    page.locator("#wizard-next").click()

    expect(page.locator("#wizard-step")).to_contain_text("Step 3 of 4")
    expect(page.locator("#id_details-remote_short_name")).to_have_value("xurrent")
    page.locator("#id_details-name").fill("")
    # Back does not validate (the name is empty) and keeps the chosen mode.
    page.locator("#wizard-back").click()
    expect(page.locator("#wizard-step")).to_contain_text("Step 2 of 4")
    expect(page.locator("input[name='mode-mode'][value='script']")).to_be_checked()
    page.locator("#wizard-next").click()

    page.locator("#id_details-local_short_name").fill("desk-a")
    page.locator("#id_details-name").fill("Browser walk")
    # Enter in a field means Next, not Back.
    page.locator("#id_details-name").press("Enter")

    page.wait_for_url(re.compile(r".*/connections/[0-9a-f-]{36}/invitation/$"))
    expect(page.locator("#wizard-step")).to_contain_text("Step 4 of 4")
    expect(page.get_by_role("link", name="Go to remote")).to_have_attribute(
        "href", f"{b.url}/connections/accept/"
    )
    expect(page.locator("#invitation-expiry time")).to_have_attribute("title", re.compile(".+"))

    page.get_by_role("button", name="Copy invitation code").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    copied = page.evaluate("navigator.clipboard.readText()")
    shown = page.locator("#invitation-code").inner_text().strip()
    assert copied == shown
    code = decode(copied)
    assert code.name == "Browser walk"
    assert code.mode == "script"
    assert code.source_url == a.url
    assert code.destination_uid == node_uid(b)

    # Without the clipboard API the code is selected for the admin to copy by hand.
    page.evaluate("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    page.get_by_role("button", name="Copy invitation code").click()
    expect(page.locator("#copy-status")).not_to_have_text("")
    assert page.evaluate("window.getSelection().toString()").strip() == shown

    page.get_by_role("link", name="Done").click()
    page.wait_for_url(f"{a.url}/connections/")
    row = page.locator("tr[data-connection-id]", has_text="Browser walk")
    expect(row).to_have_attribute("data-status", "pending")

    # The code was shown once: going back to its page offers a new one instead.
    page.go_back()
    page.reload()
    expect(page.get_by_text("can no longer be shown")).to_be_visible()
    expect(page.locator("#invitation-code")).to_have_count(0)
    page.get_by_role("button", name="Regenerate invitation").click()
    regenerated = page.locator("#invitation-code").inner_text().strip()
    assert regenerated != shown
    assert decode(regenerated).connection_id == code.connection_id
