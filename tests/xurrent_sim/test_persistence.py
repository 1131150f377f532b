"""--data FILE: the account survives a restart; the file is always whole JSON."""

from __future__ import annotations

import json

import httpx

from tests.xurrent_sim.conftest import new_request
from xurrent_sim.testing import running_simulator


def test_requests_and_notes_survive_a_restart(tmp_path):
    data = tmp_path / "account.json"
    with (
        running_simulator(data=data, log_path=tmp_path / "1.log") as sim,
        httpx.Client(base_url=sim.url, headers=sim.headers) as api,
    ):
        request = new_request(api, note="kept")
        api.patch(f"/requests/{request['id']}", json={"status": "accepted"})
        before = api.get(f"/requests/{request['id']}").json()
    assert json.loads(data.read_text())["requests"]
    with (
        running_simulator(data=data, log_path=tmp_path / "2.log") as sim,
        httpx.Client(base_url=sim.url, headers=sim.headers) as api,
    ):
        assert api.get(f"/requests/{request['id']}").json() == before
        notes = api.get(f"/requests/{request['id']}/notes").json()
        assert [n["text"] for n in notes] == ["kept"]
        assert new_request(api)["id"] == request["id"] + 1


def test_no_temporary_file_is_left_next_to_the_data(tmp_path):
    data = tmp_path / "account.json"
    with (
        running_simulator(data=data, log_path=tmp_path / "sim.log") as sim,
        httpx.Client(base_url=sim.url, headers=sim.headers) as api,
    ):
        for i in range(5):
            new_request(api, subject=f"r{i}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["account.json", "sim.log"]
    assert len(json.loads(data.read_text())["requests"]) == 5


def test_first_id_sets_where_ids_start(tmp_path):
    options = {"extra_args": ["--first-id", "5000"], "log_path": tmp_path / "sim.log"}
    with (
        running_simulator(**options) as sim,
        httpx.Client(base_url=sim.url, headers=sim.headers) as api,
    ):
        assert new_request(api)["id"] == 5000
