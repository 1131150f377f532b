"""Faults on demand (`/_sim/faults`), the rate limit, the clock and the write counters."""

from __future__ import annotations

import httpx
import pytest

from tests.xurrent_sim.conftest import new_request
from xurrent_sim.testing import running_simulator

INCIDENT = {"subject": "Disk full", "category": "incident", "impact": "low", "team_id": 1}


def test_an_error_fault_answers_5xx_and_stores_nothing(api, sim):
    sim.fault("error", status=503, count=2)
    assert api.post("/requests", json=INCIDENT).status_code == 503
    answer = api.get("/requests")
    assert answer.status_code == 503
    assert answer.json() == {"message": "Service Unavailable"}
    assert api.get("/requests").json() == []
    assert sim.writes() == 0


def test_an_error_fault_can_store_the_write_first(api, sim):
    sim.fault("error", status=500, store=True, method="POST")
    assert api.post("/requests", json=INCIDENT).status_code == 500
    assert [r["subject"] for r in api.get("/requests").json()] == ["Disk full"]
    assert sim.writes("POST") == 1


def test_a_fault_hits_only_the_calls_it_names(api, sim):
    request = new_request(api)
    sim.fault("error", status=502, method="PATCH", path=r"^/v1/requests/\d+$")
    assert api.get(f"/requests/{request['id']}").status_code == 200
    assert api.post(f"/requests/{request['id']}/notes", json={"text": "a"}).status_code == 201
    assert api.patch(f"/requests/{request['id']}", json={"subject": "b"}).status_code == 502
    assert api.patch(f"/requests/{request['id']}", json={"subject": "b"}).status_code == 200
    assert sim.faults() == []


def test_a_timeout_fault_stores_the_write_but_answers_after_the_client_gave_up(api, sim):
    sim.fault("timeout", delay=2.0, method="POST")
    with pytest.raises(httpx.ReadTimeout):
        api.post("/requests", json=INCIDENT, timeout=0.5)
    (stored,) = api.get("/requests").json()
    assert stored["subject"] == "Disk full"
    assert sim.writes("POST") == 1


def test_a_timeout_fault_without_store_answers_504_late_and_stores_nothing(api, sim):
    sim.fault("timeout", delay=0.3, store=False)
    answer = api.post("/requests", json=INCIDENT)
    assert answer.status_code == 504
    assert api.get("/requests").json() == []


def test_a_disconnect_fault_closes_the_connection_after_storing(api, sim):
    sim.fault("disconnect", method="POST")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/requests", json=INCIDENT)
    assert len(api.get("/requests").json()) == 1


def test_a_burst_of_429s_carries_retry_after_then_calls_pass_again(api, sim):
    sim.fault("rate_limit", count=2, retry_after=7)
    for _ in range(2):
        answer = api.get("/requests")
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "7"
        assert answer.json()["message"] == "Too Many Requests"
    assert api.get("/requests").status_code == 200
    assert sim.stats()["rate_limited"] == 2


def test_a_bad_fault_is_refused(sim):
    for spec in (
        {"kind": "explode"},
        {"kind": "error", "colour": "red"},
        {"kind": "error", "count": 0},
    ):
        with pytest.raises(AssertionError, match="400"):
            sim.control("POST", "faults", spec)


def test_stats_count_calls_and_writes_per_method_and_endpoint(api, sim):
    request = new_request(api)
    api.patch(f"/requests/{request['id']}", json={"status": "accepted"})
    api.post(f"/requests/{request['id']}/notes", json={"text": "x"})
    api.get(f"/requests/{request['id']}")
    api.post("/requests", json={"subject": ""})  # refused: a call, not a write
    stats = sim.stats()
    assert stats["calls"] == {"POST": 3, "PATCH": 1, "GET": 1}
    assert stats["writes"] == {"POST": 2, "PATCH": 1}
    assert stats["write_endpoints"] == {
        "POST /v1/requests": 1,
        "PATCH /v1/requests/:id": 1,
        "POST /v1/requests/:id/notes": 1,
    }
    assert stats["endpoints"]["GET /v1/requests/:id"] == 1
    assert stats["statuses"] == {"201": 2, "200": 2, "422": 1}


def test_reset_empties_the_account_and_the_counters(api, sim):
    new_request(api)
    sim.fault("error")
    sim.reset()
    assert sim.faults() == []
    assert sim.stats()["calls"] == {}
    assert api.get("/requests").json() == []


def test_the_clock_moves_timestamps_and_the_date_header(api, sim):
    sim.clock(now="2030-01-02T03:04:05Z")
    answer = api.post("/requests", json=INCIDENT)
    assert answer.json()["created_at"].startswith("2030-01-02T03:04:0")
    assert "02 Jan 2030" in answer.headers["Date"]
    sim.clock(offset=0)


def test_past_the_rate_limit_calls_get_429_until_the_hour_is_over(tmp_path):
    with (
        running_simulator(rate_limit=3, log_path=tmp_path / "sim.log") as sim,
        httpx.Client(base_url=sim.url, headers=sim.headers) as api,
    ):
        remaining = [api.get("/requests").headers["X-RateLimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        refused = api.get("/requests")
        assert refused.status_code == 429
        assert 3500 < int(refused.headers["Retry-After"]) <= 3600
        assert refused.headers["X-RateLimit-Limit"] == "3"
        assert refused.json() == {"message": "Too Many Requests"}
        sim.clock(advance=3600)
        assert api.get("/requests").status_code == 200


def test_a_burst_limit_refuses_calls_beyond_it_within_two_seconds(tmp_path):
    options = {"extra_args": ["--burst-limit", "3"], "log_path": tmp_path / "sim.log"}
    with (
        running_simulator(**options) as sim,
        httpx.Client(base_url=sim.url, headers=sim.headers) as api,
    ):
        statuses = [api.get("/requests").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = api.get("/requests")
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
