"""Lists: Xurrent's filter syntax, sorting and page links."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.xurrent_sim.conftest import new_request


def ids(answer: httpx.Response) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [r["id"] for r in answer.json()]


@pytest.fixture
def three(api, sim):
    """Three requests a few seconds apart: an incident, a question and an order."""
    first = new_request(api, subject="one", impact="low", team_id=1, member_id=2, source="a")
    sim.clock(advance=10)
    second = new_request(api, subject="two", category="rfi", impact=None, team_id=2)
    sim.clock(advance=10)
    third = new_request(api, subject="three", category="order", impact="high", team_id=2,
                        sourceID="twin-3")  # fmt: skip
    sim.clock(advance=10)
    api.patch(f"/requests/{first['id']}", json={"status": "in_progress"})
    return first, second, third


def test_the_default_order_is_id_descending(api, three):
    assert ids(api.get("/requests")) == [three[2]["id"], three[1]["id"], three[0]["id"]]


def test_equality_and_lists_filter_ids_enums_and_references(api, three):
    first, second, third = (r["id"] for r in three)
    assert ids(api.get(f"/requests?id={second}")) == [second]
    assert ids(api.get(f"/requests?id={first},{third}")) == [third, first]
    assert ids(api.get("/requests?category=rfi,order")) == [third, second]
    assert ids(api.get("/requests?status=in_progress")) == [first]
    assert ids(api.get("/requests?team=2")) == [third, second]
    assert ids(api.get("/requests?member=2")) == [first]
    assert ids(api.get("/requests?impact=high")) == [third]
    assert ids(api.get("/requests?sourceID=twin-3")) == [third]
    assert ids(api.get("/requests?source=a")) == [first]


def test_negation_in_both_spellings(api, three):
    first, second, third = (r["id"] for r in three)
    assert ids(api.get("/requests?status=!assigned")) == [first]
    assert ids(api.get("/requests?status!=assigned")) == [first]
    assert ids(api.get("/requests?category!=rfi,order")) == [first]
    assert ids(api.get(f"/requests?id=!{first},{second}")) == [third]


def test_empty_and_present(api, three):
    first, second, third = (r["id"] for r in three)
    assert ids(api.get("/requests?impact=")) == [second]
    assert ids(api.get("/requests?impact=!")) == [third, first]
    assert ids(api.get("/requests?member!=")) == [first]
    assert ids(api.get("/requests?sourceID=")) == [second, first]


def test_comparisons_on_ids_and_times(api, three):
    first, second, third = (r["id"] for r in three)
    created = three[1]["created_at"]
    assert ids(api.get(f"/requests?id=>{first}")) == [third, second]
    assert ids(api.get(f"/requests?id=>={second}")) == [third, second]
    assert ids(api.get(f"/requests?id=<{second}")) == [first]
    assert ids(api.get(f"/requests?id=<={second}")) == [second, first]
    assert ids(api.get("/requests", params={"created_at": f">{created}"})) == [third]
    assert ids(api.get("/requests", params={"created_at": f">={created}"})) == [third, second]
    assert ids(api.get("/requests", params={"created_at": f"<{created}"})) == [first]
    assert ids(api.get("/requests", params={"created_at": f"<={created}"})) == [second, first]


def test_an_offset_time_is_read_as_the_same_instant(api, three):
    created = three[1]["created_at"]  # e.g. 2026-11-28T10:00:10Z → 12:00:10+02:00
    hour = int(created[11:13])
    shifted = f"{created[:11]}{(hour + 2) % 24:02d}{created[13:19]}+02:00"
    if (hour + 2) < 24:
        assert ids(api.get("/requests", params={"created_at": shifted})) == [three[1]["id"]]


def test_ranges(api, three):
    first, second, third = (r["id"] for r in three)
    assert ids(api.get(f"/requests?id=>{first}<{third}")) == [second]
    assert ids(api.get(f"/requests?id=>={first}<={second}")) == [second, first]
    low, high = three[0]["created_at"], three[2]["created_at"]
    assert ids(api.get("/requests", params={"created_at": f">{low}<{high}"})) == [second]


def test_filters_are_anded(api, three):
    first, second, third = (r["id"] for r in three)
    assert ids(api.get("/requests?team=2&category=order")) == [third]
    assert ids(api.get("/requests?team=2&category=incident")) == []


def test_updated_at_filters_see_the_latest_change(api, three):
    first = three[0]
    since = api.get(f"/requests/{first['id']}").json()["updated_at"]
    assert ids(api.get("/requests", params={"updated_at": f">={since}"})) == [first["id"]]


def test_sorting_ascending_and_descending(api, three):
    first, second, third = (r["id"] for r in three)
    assert ids(api.get("/requests?sort=updated_at")) == [second, third, first]
    assert ids(api.get("/requests?sort=-updated_at")) == [first, third, second]
    assert ids(api.get("/requests?sort=id")) == [first, second, third]
    assert ids(api.get("/requests?sort=subject")) == [first, third, second]


def test_an_unsupported_filter_or_sort_is_refused_with_400(api, three):
    for query in ("subject=one", "sort=nonsense", "id=abc", "status=sleeping", "source=<a"):
        answer = api.get(f"/requests?{query}")
        assert answer.status_code == 400, query
        assert answer.json()["message"]


def link_map(header: str) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>;\s*rel="(\w+)"', header)}


def test_pages_follow_the_link_header_across_every_page(api):
    created = [new_request(api, subject=f"r{i}", category="rfi")["id"] for i in range(23)]
    seen, url, pages = [], "/requests?per_page=5&category=rfi", 0
    while url:
        answer = api.get(url)
        pages += 1
        assert answer.headers["X-Pagination-Per-Page"] == "5"
        assert answer.headers["X-Pagination-Current-Page"] == str(pages)
        assert answer.headers["X-Pagination-Total-Pages"] == "5"
        assert answer.headers["X-Pagination-Total-Entries"] == "23"
        links = link_map(answer.headers["Link"])
        assert "category=rfi" in links["first"] and "page=5" in links["last"]
        assert ("prev" in links) == (pages > 1)
        seen += ids(answer)
        url = links.get("next")
    assert pages == 5
    assert seen == sorted(created, reverse=True)


def test_per_page_defaults_to_20_and_is_cut_to_100(api, sim):
    for i in range(101):
        api.post("/requests", json={"subject": f"r{i}", "category": "rfi", "team_id": 1})
    assert len(api.get("/requests").json()) == 20
    answer = api.get("/requests?per_page=500")
    assert len(answer.json()) == 100
    assert answer.headers["X-Pagination-Per-Page"] == "100"


def test_a_page_past_the_end_is_empty(api, three):
    answer = api.get("/requests?page=9")
    assert answer.status_code == 200
    assert answer.json() == []


def test_notes_are_paginated_too(api):
    request = new_request(api)
    for i in range(3):
        api.post(f"/requests/{request['id']}/notes", json={"text": f"n{i}"})
    answer = api.get(f"/requests/{request['id']}/notes?per_page=2&sort=id")
    assert [n["text"] for n in answer.json()] == ["n0", "n1"]
    assert answer.headers["X-Pagination-Total-Entries"] == "3"
    assert "next" in link_map(answer.headers["Link"])
