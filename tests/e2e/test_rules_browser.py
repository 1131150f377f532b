"""Sync rules in a real browser: a refused save keeps the text, a fixed one is a version."""

import pytest

from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e

SETUP = """
from django.contrib.auth import get_user_model
from connections.models import Connection
from sync.services import save_rules
c = Connection.objects.create(name="Acme to Globex", mode="script", role="source",
                              local_short_name="acme", remote_short_name="globex")
save_rules(c, "replica.summary = entity.summary\\n", "entity.summary = replica.summary\\n",
           get_user_model().objects.get(username="admin"))
print(c.pk)
"""


def test_an_admin_edits_saves_and_test_runs_sync_rules(live_nodes, page):
    node = live_nodes("rules")
    connection_id = node.shell(SETUP).splitlines()[-1]
    log_in(page, node.url, node.username, node.password)
    page.goto(f"{node.url}/connections/{connection_id}/rules/")
    assert page.locator("#sync-rules").get_attribute("data-rules-version") == "1"

    broken = "replica.summary = entity.summary\nreplica.status = (entity.status\n"
    page.fill("#id_outgoing", broken)
    page.click("#save-rules")
    error = page.locator("#outgoing-errors .problem")
    assert "Line 2" in error.inner_text()
    assert "never closed" in error.inner_text()
    assert page.input_value("#id_outgoing") == broken

    # Clicking the error selects the line in the editor.
    error.click()
    selected = page.evaluate(
        "() => { const a = document.getElementById('id_outgoing');"
        " return a.value.slice(a.selectionStart, a.selectionEnd); }"
    )
    assert selected == "replica.status = (entity.status"

    fixed = "replica.summary = entity.summary\nreplica.status = entity.status\n"
    page.fill("#id_outgoing", fixed)
    page.fill("#id_note", "send the status too")
    page.click("#save-rules")
    page.wait_for_selector(".message.success")
    assert "version 2" in page.locator(".message.success").inner_text()
    assert page.locator("#sync-rules").get_attribute("data-rules-version") == "2"
    assert page.locator('#rules-history tr[data-version="2"]').inner_text().count("send the") == 1

    page.click("#test-run")
    replica = page.locator("#replica")
    replica.wait_for()
    text = replica.inner_text()
    assert '"summary": "VPN drops every few minutes when working from home"' in text
    assert '"status": "in_progress"' in text
    assert page.locator("#incoming-changes").is_visible()
    assert page.locator("#sync-rules").get_attribute("data-rules-version") == "2"
