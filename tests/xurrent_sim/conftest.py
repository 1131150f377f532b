"""Fixtures: one simulator process for the session (reset before each test), real HTTP."""

from __future__ import annotations

import httpx
import pytest

from xurrent_sim.testing import RunningSimulator, start_simulator


@pytest.fixture(scope="session")
def sim_process(tmp_path_factory) -> RunningSimulator:
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    sim = start_simulator(account="widget-test", token="secret-token-1", log_path=log)
    yield sim
    sim.stop()


@pytest.fixture
def sim(sim_process) -> RunningSimulator:
    sim_process.reset()
    return sim_process


@pytest.fixture
def api(sim) -> httpx.Client:
    with httpx.Client(base_url=sim.url, headers=sim.headers, timeout=10) as client:
        yield client


def new_request(api: httpx.Client, **fields) -> dict:
    body = {"subject": "Printer jams", "category": "incident", "impact": "low", "team_id": 1}
    answer = api.post("/requests", json={**body, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()
