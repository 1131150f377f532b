"""Two live nodes, two simulated Xurrent accounts, two workers: the sync over real HTTP.

The sides are started once for the module; each test uses requests of its own.
"""

from __future__ import annotations

import pytest

from tests.sync.live import LiveSide, connect, quiet, start_side, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("live-sync")
    started: list[LiveSide] = []
    try:
        a = start_side(workdir, "a")
        started.append(a)
        b = start_side(workdir, "b")
        started.append(b)
        connect(a, b)
        yield a, b
    finally:
        for side in started:
            side.stop()


def twin_of(side: LiveSide, request_id: int) -> dict | None:
    for twin in side.status()["twins"]:
        if twin["local_id"] == request_id:
            return twin
    return None


def copy_on(b: LiveSide, a: LiveSide, request_id: int) -> dict:
    """B's copy of A's request, once it is there."""
    twin = wait_for(lambda: twin_of(a, request_id), f"A starts a twin for #{request_id}")
    return wait_for(lambda: b.copy_of(twin["twin_id"]), f"B has a copy of #{request_id}")


def test_a_request_created_on_a_appears_on_b_and_edits_and_notes_cross_without_a_loop(sides):
    a, b = sides
    request = a.create("Printer on fire", impact="high", note="Smoke everywhere")
    copy = copy_on(b, a, request["id"])
    assert (copy["subject"], copy["impact"], copy["category"]) == (
        "Printer on fire",
        "high",
        "incident",
    )
    assert b.texts(copy["id"]) == ["Smoke everywhere"]
    wait_for(lambda: twin_of(a, request["id"])["remote_id"] == str(copy["id"]), "A links B's id")

    a.update(request["id"], subject="Printer on fire, 2nd floor")
    b.add_note(copy["id"], "Extinguisher on its way")
    wait_for(
        lambda: b.api("GET", f"/requests/{copy['id']}")["subject"] == "Printer on fire, 2nd floor",
        "A's edit reaches B",
    )
    wait_for(lambda: "Extinguisher on its way" in a.texts(request["id"]), "B's note reaches A")

    writes = quiet([a, b])
    assert a.texts(request["id"]).count("Extinguisher on its way") == 1
    assert b.texts(copy["id"]).count("Extinguisher on its way") == 1
    # After the burst, several polls and worker rounds later: nothing more is written.
    assert quiet([a, b]) == writes
