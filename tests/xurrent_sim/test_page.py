"""The web page: a person lists, creates and edits requests and adds notes with forms."""

from __future__ import annotations

import httpx
import pytest

from tests.xurrent_sim.conftest import new_request


@pytest.fixture
def browser(sim):
    with httpx.Client(base_url=sim.page_url, follow_redirects=False, timeout=10) as client:
        yield client


def test_the_page_lists_requests_without_a_token(browser, api):
    new_request(api, subject="Coffee machine broken")
    page = browser.get("/")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Coffee machine broken" in page.text


def test_a_request_created_on_the_page_is_made_by_the_account_owner(browser, api, sim):
    answer = browser.post(
        "/requests",
        data={
            "subject": "Screen flickers",
            "category": "incident",
            "impact": "high",
            "team_id": "2",
        },
    )
    assert answer.status_code == 303
    (request,) = api.get("/requests").json()
    assert answer.headers["Location"] == f"/requests/{request['id']}"
    assert request["subject"] == "Screen flickers"
    assert request["team"]["name"] == "Network"
    assert request["requested_by"]["name"] == "Sam Owner"
    assert sim.stats()["page_writes"] == 1
    assert sim.writes() == 0  # API writes only


def test_an_invalid_form_shows_the_errors_and_creates_nothing(browser, api):
    answer = browser.post("/requests", data={"subject": "", "category": "incident", "team_id": "1"})
    assert answer.status_code == 422
    assert "can&#x27;t be blank" in answer.text
    assert api.get("/requests").json() == []


def test_a_request_is_edited_on_its_page(browser, api):
    request = new_request(api)
    page = browser.get(f"/requests/{request['id']}")
    assert page.status_code == 200
    answer = browser.post(
        f"/requests/{request['id']}",
        data={
            "subject": "Printer jams again",
            "category": "incident",
            "status": "in_progress",
            "completion_reason": "",
            "impact": "medium",
            "team_id": "1",
            "member_id": "2",
        },
    )
    assert answer.status_code == 303
    changed = api.get(f"/requests/{request['id']}").json()
    assert changed["subject"] == "Printer jams again"
    assert changed["status"] == "in_progress"
    assert changed["impact"] == "medium"
    assert changed["member"] == {"id": 2, "name": "Jo Agent"}


def test_a_note_is_added_on_the_page(browser, api):
    request = new_request(api)
    answer = browser.post(
        f"/requests/{request['id']}/notes", data={"text": "Called the user", "internal": "1"}
    )
    assert answer.status_code == 303
    (note,) = api.get(f"/requests/{request['id']}/notes").json()
    assert note["text"] == "Called the user"
    assert note["internal"] is True
    assert note["person"]["name"] == "Sam Owner"
    assert "Called the user" in browser.get(f"/requests/{request['id']}").text


def test_what_the_page_shows_is_escaped(browser, api):
    request = new_request(api, subject="<script>alert(1)</script>")
    api.post(f"/requests/{request['id']}/notes", json={"text": "<b>bold</b>"})
    listing = browser.get("/").text
    detail = browser.get(f"/requests/{request['id']}").text
    for html in (listing, detail):
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;" in html
    assert "<b>bold</b>" not in detail


def test_the_filter_box_uses_the_api_syntax(browser, api):
    new_request(api, subject="alpha", category="rfi")
    new_request(api, subject="beta")
    page = browser.get("/", params={"filter": "category=rfi"}).text
    assert "alpha" in page and "beta" not in page
    assert "not supported" in browser.get("/", params={"filter": "colour=red"}).text


def test_an_unknown_page_is_404(browser):
    assert browser.get("/requests/999").status_code == 404
    assert browser.get("/nowhere").status_code == 404
