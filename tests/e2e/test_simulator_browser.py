"""The Xurrent simulator's page in Chromium: a person creates a request, edits it and adds
a note, and the API (what a node reads) sees each change."""

from __future__ import annotations

import httpx
import pytest

from xurrent_sim.testing import running_simulator

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sim():
    with running_simulator(account="browser-test", token="browser-token-123") as sim:
        yield sim


def api_requests(sim) -> list[dict]:
    return httpx.get(f"{sim.url}/requests", headers=sim.headers, timeout=10).json()


def test_a_person_creates_edits_and_notes_a_request_on_the_simulators_page(page, sim):
    page.goto(sim.page_url)
    create = page.locator("form[action='/requests']")
    create.locator("input[name=subject]").fill("Printer on fire")
    create.locator("select[name=category]").select_option("incident")
    create.locator("select[name=impact]").select_option("high")
    create.locator("select[name=team_id]").select_option(index=1)
    create.locator("button").click()
    page.wait_for_url("**/requests/*")

    (made,) = api_requests(sim)
    assert made["subject"] == "Printer on fire"
    assert (made["category"], made["impact"]) == ("incident", "high")
    assert page.url.endswith(f"/requests/{made['id']}")
    assert "Printer on fire" in page.content()

    edit = page.locator(f"form[action='/requests/{made['id']}']")
    edit.locator("input[name=subject]").fill("Printer on fire, 2nd floor")
    edit.locator("button").click()
    page.wait_for_load_state()
    note = page.locator(f"form[action='/requests/{made['id']}/notes']")
    note.locator("textarea[name=text]").fill("Extinguisher used.")
    note.locator("button").click()
    page.wait_for_load_state()

    (after,) = api_requests(sim)
    assert after["subject"] == "Printer on fire, 2nd floor"
    notes = httpx.get(
        f"{sim.url}/requests/{made['id']}/notes", headers=sim.headers, timeout=10
    ).json()
    assert [n["text"] for n in notes] == ["Extinguisher used."]
    assert "Extinguisher used." in page.content()


def test_a_form_missing_its_subject_shows_the_error_and_creates_nothing(page, sim):
    sim.reset()
    page.goto(sim.page_url)
    create = page.locator("form[action='/requests']")
    create.locator("select[name=team_id]").select_option(index=1)
    create.locator("button").click()
    page.wait_for_load_state()
    assert "blank" in page.content().lower()
    assert api_requests(sim) == []
