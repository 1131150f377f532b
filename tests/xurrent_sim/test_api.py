"""The simulated Xurrent API over real HTTP: access, requests, notes, errors."""

from __future__ import annotations

import email.utils
import re

import httpx

from tests.xurrent_sim.conftest import new_request

ISO_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def test_a_missing_token_is_refused_with_401(sim):
    answer = httpx.get(f"{sim.url}/requests", headers={"X-Xurrent-Account": sim.account})
    assert answer.status_code == 401
    assert "token" in answer.json()["message"]


def test_a_wrong_token_is_refused_with_401(sim):
    headers = {**sim.headers, "Authorization": "Bearer not-the-token"}
    answer = httpx.get(f"{sim.url}/requests", headers=headers)
    assert answer.status_code == 401
    assert set(answer.json()) == {"message"}


def test_an_unknown_account_is_refused_with_401_naming_it(sim):
    headers = {**sim.headers, "X-Xurrent-Account": "globex"}
    answer = httpx.get(f"{sim.url}/requests", headers=headers)
    assert answer.status_code == 401
    assert "globex" in answer.json()["message"]


def test_a_missing_account_header_is_refused(sim):
    answer = httpx.get(f"{sim.url}/requests", headers={"Authorization": f"Bearer {sim.token}"})
    assert answer.status_code == 401


def test_the_older_4me_account_header_is_accepted(sim):
    headers = {"Authorization": f"Bearer {sim.token}", "X-4me-Account": sim.account}
    assert httpx.get(f"{sim.url}/requests", headers=headers).status_code == 200


def test_me_and_account_answer_who_the_token_is(api, sim):
    me = api.get("/me").json()
    assert me["name"] == "Integration User"
    assert me["account"]["id"] == sim.account
    assert api.get("/account").json()["id"] == sim.account


def test_a_created_request_is_answered_201_with_references_as_id_and_name(api):
    answer = api.post(
        "/requests",
        json={
            "subject": "VPN down",
            "category": "incident",
            "impact": "high",
            "team_id": 2,
            "member_id": 3,
            "requested_for_id": 4,
            "sourceID": "twin-123",
        },
    )
    assert answer.status_code == 201
    request = answer.json()
    assert request["team"] == {"id": 2, "name": "Network"}
    assert request["member"] == {"id": 3, "name": "Kim Specialist"}
    assert request["requested_for"] == {"id": 4, "name": "Lee Customer"}
    assert request["requested_by"] == {"id": 5, "name": "Integration User"}
    assert request["status"] == "assigned"
    assert request["sourceID"] == "twin-123"
    assert ISO_SECOND.match(request["created_at"])
    assert request["updated_at"] == request["created_at"]
    assert api.get(f"/requests/{request['id']}").json() == request


def test_the_source_header_marks_what_a_call_creates(api):
    answer = api.post(
        "/requests",
        json={"subject": "Mail", "category": "rfi", "team_id": 1},
        headers={"X-4me-Source": "exalate"},
    )
    assert answer.json()["source"] == "exalate"


def test_answers_carry_a_date_and_the_rate_limit_headers(api):
    answer = api.get("/requests")
    assert email.utils.parsedate_to_datetime(answer.headers["Date"])
    assert answer.headers["X-RateLimit-Limit"] == "3600"
    assert int(answer.headers["X-RateLimit-Remaining"]) < 3600
    assert int(answer.headers["X-RateLimit-Reset"]) > 1_700_000_000


def test_an_invalid_request_gets_422_with_message_and_errors_and_is_not_stored(api, sim):
    answer = api.post(
        "/requests",
        json={"subject": "x" * 256, "category": "incident", "team_id": 99, "source": "s" * 31},
    )
    assert answer.status_code == 422
    body = answer.json()
    assert body["message"].startswith("Validation Failed")
    fields = {field for field, _ in body["errors"]}
    assert fields == {"subject", "team_id", "source", "impact"}
    assert api.get("/requests").json() == []
    assert sim.writes() == 0


def test_an_unknown_category_or_field_is_refused(api):
    answer = api.post(
        "/requests", json={"subject": "a", "category": "problem", "team_id": 1, "team": 1}
    )
    assert answer.status_code == 422
    assert {field for field, _ in answer.json()["errors"]} == {"category", "team"}


def test_an_incident_needs_an_impact_but_a_question_does_not(api):
    incident = {"subject": "a", "category": "incident", "team_id": 1}
    assert api.post("/requests", json=incident).status_code == 422
    assert api.post("/requests", json={**incident, "category": "rfi"}).status_code == 201


def test_an_unknown_request_is_404(api):
    answer = api.get("/requests/4242")
    assert answer.status_code == 404
    assert "4242" in answer.json()["message"]
    assert api.patch("/requests/4242", json={"subject": "b"}).status_code == 404
    assert api.get("/requests/4242/notes").status_code == 404


def test_a_patch_changes_only_the_given_fields_and_moves_updated_at(api, sim):
    request = new_request(api)
    sim.clock(advance=5)
    answer = api.patch(f"/requests/{request['id']}", json={"status": "in_progress"})
    assert answer.status_code == 200
    changed = answer.json()
    assert changed["status"] == "in_progress"
    assert changed["subject"] == request["subject"]
    assert changed["updated_at"] > request["updated_at"]


def test_a_patch_that_changes_nothing_keeps_updated_at(api, sim):
    request = new_request(api)
    sim.clock(advance=5)
    answer = api.patch(f"/requests/{request['id']}", json={"subject": request["subject"]})
    assert answer.json()["updated_at"] == request["updated_at"]


def test_completing_needs_a_reason_and_sets_completed_at(api):
    request = new_request(api)
    refused = api.patch(f"/requests/{request['id']}", json={"status": "completed"})
    assert refused.status_code == 422
    done = api.patch(
        f"/requests/{request['id']}", json={"status": "completed", "completion_reason": "solved"}
    ).json()
    assert done["completed_at"] is not None
    assert done["completion_reason"] == "solved"


def test_notes_are_added_and_listed_with_person_and_internal_flag(api):
    request = new_request(api, note="first words")
    answer = api.post(f"/requests/{request['id']}/notes", json={"text": "hello", "internal": True})
    assert answer.status_code == 201
    note = answer.json()
    assert note["text"] == "hello"
    assert note["internal"] is True
    assert note["person"] == {"id": 5, "name": "Integration User"}
    assert ISO_SECOND.match(note["created_at"])
    api.patch(f"/requests/{request['id']}", json={"internal_note": "behind the scenes"})
    notes = api.get(f"/requests/{request['id']}/notes").json()
    assert [(n["text"], n["internal"]) for n in notes] == [
        ("behind the scenes", True),
        ("hello", True),
        ("first words", False),
    ]


def test_an_empty_note_is_refused(api):
    request = new_request(api)
    answer = api.post(f"/requests/{request['id']}/notes", json={"text": " "})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [["text", "can't be blank"]]
    assert api.get(f"/requests/{request['id']}/notes").json() == []


def test_a_body_that_is_not_json_is_refused_with_400(api):
    answer = api.post("/requests", content=b"{nope", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert "JSON" in answer.json()["message"]


def test_teams_and_people_are_listed(api):
    assert {t["name"] for t in api.get("/teams").json()} == {
        "Service Desk",
        "Network",
        "Applications",
    }
    assert {p["name"] for p in api.get("/people").json()} >= {"Sam Owner", "Integration User"}
