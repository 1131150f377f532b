"""The Sync tab in a real browser, on a live node with its Xurrent simulator and worker:
a trigger added (a refused one first), Bulk exalate followed to the end without a reload,
and a script error retried once the script is fixed.

One node holds both sides of a local connection (both share the simulated account): A's
requests are copied into the same account by B, as the engine does between two nodes.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import log_in
from tests.livenodes import initiate_between
from tests.sync.engine import INCOMING, OUTGOING
from tests.sync.live import LiveSide, start_side, wait_for

pytestmark = pytest.mark.e2e

BROKEN_OUTGOING = OUTGOING + "replica.summary = entity.summary + missing_name\n"


def save_rules(side: LiveSide, outgoing: str, *connection_ids: str) -> None:
    side.shell(
        "from connections.models import Connection\n"
        "from sync.services import save_rules\n"
        f"for pk in {list(connection_ids)!r}:\n"
        f"    save_rules(Connection.objects.get(pk=pk), {outgoing!r}, {INCOMING!r})"
    )


def hints_pending(side: LiveSide) -> int:
    return int(
        side.shell(
            "from xurrent.models import WebhookHint\n"
            "print(WebhookHint.objects.filter(processed=False).count())"
        ).splitlines()[-1]
    )


@pytest.fixture(scope="module")
def side(tmp_path_factory):
    """A node, its simulator (webhooks to the node) and its worker, with an active local
    connection A (this test's) ↔ B, and three incidents and an order in Xurrent that
    nobody changed for ten minutes (so only Bulk exalate syncs them)."""
    started = start_side(tmp_path_factory.mktemp("sync-tab"), "a")
    try:
        for n in range(3):
            started.create(f"Incident {n}")
        started.create("An order", category="order")
        # Polls look a minute back from Xurrent's clock: these are older than that now.
        started.sim.clock(advance=600)
        a_id, code = initiate_between(started.node, started.node, "Loopback")
        out = started.node.manage("accept_invitation", code, "--local-short-name", "desk-b")
        b_id = out.stdout.strip().splitlines()[-1].split()[0]
        save_rules(started, OUTGOING, a_id, b_id)
        started.connection_id = a_id
        wait_for(lambda: started.status()["status"] == "active", "the connection is active")
        wait_for(lambda: hints_pending(started) == 0, "the webhooks of the creates are taken")
        time.sleep(5)  # two polls after the clock moved: the watermark is past them
        yield started
    finally:
        started.stop()


def counter(page, part: str, name: str) -> str:
    return page.locator(f'[data-part="{part}"] [data-count="{name}"]').inner_text().strip()


def test_a_trigger_bulk_exalate_and_a_retried_error_in_the_browser(side, page):
    node, a_id = side.node, side.connection_id
    log_in(page, node.url, node.username, node.password)
    page.goto(f"{node.url}/connections/{a_id}/")
    page.click("#open-sync-tab")
    page.wait_for_url(f"{node.url}/connections/{a_id}/sync/")
    assert page.locator("#no-triggers").is_visible()
    assert page.locator("#bulk-exalate").is_disabled()

    # A filter Xurrent refuses is refused with its words; the typed text stays.
    page.fill("#id_query", "colour=red")
    page.click("#add-trigger-button")
    assert "Xurrent refused this filter" in page.locator("#add-trigger [role=alert]").inner_text()
    assert page.input_value("#id_query") == "colour=red"
    assert page.locator("#trigger-table").count() == 0

    page.fill("#id_query", "category=incident")
    page.fill("#id_note", "every incident")
    page.click("#add-trigger-button")
    page.wait_for_selector(".message.success")
    row = page.locator("#trigger-table tbody tr")
    assert row.count() == 1 and "category=incident" in row.inner_text()
    assert row.get_attribute("data-active") == "true"

    # Bulk exalate: the page follows it by itself until every match is synced.
    started_at = time.monotonic()
    page.click("#bulk-exalate")
    page.wait_for_selector("#bulk-progress")
    assert "Bulk exalate started" in page.locator(".message.success").inner_text()
    assert page.locator("#sync-tab").get_attribute("data-pending") == "true"
    page.wait_for_function(
        "() => { const d = document.querySelector('[data-part=bulk] [data-count=done]');"
        " return d && d.textContent.trim() === '3'; }",
        timeout=60_000,
    )
    followed_in = time.monotonic() - started_at
    assert counter(page, "bulk", "matched") == "3"
    assert counter(page, "bulk", "failed") == "0"
    assert page.locator("#bulk-progress").get_attribute("data-state") == "finished"
    page.wait_for_function(
        "() => document.getElementById('sync-tab').dataset.pending === 'false'", timeout=30_000
    )
    assert page.locator("#sync-live-note").is_hidden()
    assert page.locator('#twin-table tr[data-status="open"]').count() == 3
    # Pressing again skips what is synced (here the copies too: they share the account).
    page.click("#bulk-exalate")
    page.wait_for_function(
        "() => document.querySelector('#bulk-progress').dataset.state === 'finished'"
        " && document.querySelector('[data-part=bulk] [data-count=skipped]').textContent.trim()"
        " === '6'",
        timeout=30_000,
    )
    assert counter(page, "bulk", "queued") == "0"
    copies = [r for r in side.requests() if r.get("sourceID")]
    assert sorted(r["subject"] for r in copies) == ["Incident 0", "Incident 1", "Incident 2"]

    # A broken outgoing script: the next change of a request is held with its line.
    save_rules(side, BROKEN_OUTGOING, a_id)
    first = min(r["id"] for r in side.requests() if r["subject"] == "Incident 0")
    side.update(first, subject="Incident 0, again")

    def error_shown() -> bool:
        page.goto(f"{node.url}/connections/{a_id}/sync/")
        return page.locator('#error-table tr[data-kind="script"]').count() == 1

    wait_for(error_shown, "the script error is on the tab", timeout=60)
    error = page.locator('#error-table tr[data-kind="script"]')
    assert error.get_attribute("data-blocking") == "true"
    assert f"Script line {BROKEN_OUTGOING.count(chr(10))}" in error.inner_text()
    assert "missing_name" in error.inner_text()

    # Fixed and retried: the newest state goes across and the error is gone.
    save_rules(side, OUTGOING, a_id)
    error.locator("button.retry").click()
    page.wait_for_selector(".message.success")
    assert "Retried" in page.locator(".message.success").inner_text()
    assert page.locator("#no-errors").is_visible()
    wait_for(
        lambda: any(
            r["subject"] == "Incident 0, again" for r in side.requests() if r.get("sourceID")
        ),
        "the retried change reaches the copy",
        timeout=60,
    )
    status = side.status()
    twin = next(t for t in status["twins"] if t["local_id"] == first)
    assert twin["status"] == "open" and twin["last_error"] is None
    print(json.dumps({"bulk_exalate_followed_seconds": round(followed_in, 1)}))
