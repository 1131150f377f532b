"""Two live nodes, two simulated Xurrent accounts, two workers: the sync over real HTTP.

The sides are started once for the module; each test uses requests of its own. Both
sides keep the default rules a new connection has, unchanged: the default incoming
script creates requests in the team it names ("Service Desk", looked up by name in the
simulated account), so the default path is proven end to end.
"""

from __future__ import annotations

import dataclasses

import pytest

from sync.defaults import DEFAULT_INCOMING
from tests.sync.live import LiveSide, connect, quiet, start_side, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("live-sync")
    started: list[LiveSide] = []
    try:
        a = start_side(workdir, "a")
        started.append(a)
        # B is not public: it accepts without giving a URL, and its worker pulls.
        b = start_side(workdir, "b", EXALATE_PUBLIC="false", SYNC_PULL_SECONDS="1")
        started.append(b)
        connect(a, b, rules=None)
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


def applied_per_twin(side: LiveSide, twin_ids: list[str]) -> dict[str, int]:
    out = side.shell(
        "import json\n"
        "from sync.models import InboundEvent\n"
        f"ids = {twin_ids!r}\n"
        "print(json.dumps({t: InboundEvent.objects.filter(twin__twin_id=t, "
        "state='applied').count() for t in ids}))"
    )
    import json

    return json.loads(out.splitlines()[-1])


def test_b_down_while_a_changes_three_requests_then_back_each_change_applied_once(sides):
    a, b = sides
    requests = [a.create(f"Outage {n}") for n in range(3)]
    copies = [copy_on(b, a, r["id"]) for r in requests]
    quiet([a, b])
    b.down()
    try:
        for request in requests:
            a.update(request["id"], subject=f"{request['subject']} (edited once)")
            a.update(request["id"], subject=f"{request['subject']} (edited twice)")
    finally:
        b.up()
    for request, copy in zip(requests, copies, strict=True):
        wait_for(
            lambda r=request, c=copy: (
                b.api("GET", f"/requests/{c['id']}")["subject"] == f"{r['subject']} (edited twice)"
            ),
            "B converges after its outage",
            timeout=120,
        )
    quiet([a, b])
    twin_ids = [twin_of(a, r["id"])["twin_id"] for r in requests]
    # The creation, then one event carrying both edits (the older unsent one superseded).
    assert applied_per_twin(b, twin_ids) == dict.fromkeys(twin_ids, 2)


def test_a_burst_of_429s_on_bs_xurrent_is_waited_out(sides):
    a, b = sides
    limited = b.sim.stats()["rate_limited"]
    # The engine's writes on B (its creates) meet the 429s; the test's reads do not.
    b.sim.fault("rate_limit", count=8, retry_after=1, method="POST")
    requests = [a.create(f"Busy {n}") for n in range(3)]
    for request in requests:
        copy = copy_on(b, a, request["id"])
        assert copy["subject"] == request["subject"]
    assert b.sim.stats()["rate_limited"] - limited == 8


def test_an_incoming_script_error_on_b_holds_its_twin_and_retry_after_the_fix_converges(sides):
    a, b = sides
    broken = (
        "entity.summary = replica.summary\n"
        "if 'boom' in replica.summary:\n"
        "    entity.priority = replica.nothing['x']\n"
    )
    rules = (
        "from connections.models import Connection\n"
        "from sync.services import save_rules, get_current_rules\n"
        f"c = Connection.objects.get(pk={b.connection_id!r})\n"
        "r = get_current_rules(c)\n"
    )
    b.shell(rules + f"save_rules(c, r.outgoing, r.incoming + {broken!r})")
    try:
        bad = a.create("boom goes the printer")
        good = a.create("quiet printer")
        copy_on(b, a, good["id"])
        twin = wait_for(lambda: twin_of(a, bad["id"]), "A starts the twin")

        def b_error():
            for t in b.status()["twins"]:
                if t["twin_id"] == twin["twin_id"] and t["last_error"]:
                    return t
            return None

        held = wait_for(b_error, "B records the script error")
        assert held["status"] == "blocked"
        # The broken line is the third one added to the rules in force.
        assert f"line {DEFAULT_INCOMING.count(chr(10)) + 3}" in held["last_error"]
        assert b.copy_of(twin["twin_id"]) is None
        # The sender shows it too (read-only: it is retried on B).
        wait_for(lambda: (twin_of(a, bad["id"]) or {}).get("last_error"), "A shows B's error")
    finally:
        b.shell(
            rules
            + "from sync.defaults import DEFAULT_INCOMING\n"
            + "save_rules(c, r.outgoing, DEFAULT_INCOMING)"
        )
    b.shell(
        "from sync.models import Twin\n"
        "from sync.services.errors import retry_twin\n"
        f"retry_twin(Twin.objects.get(connection_id={b.connection_id!r}, "
        f"twin_id={twin['twin_id']!r}))"
    )
    copy = wait_for(lambda: b.copy_of(twin["twin_id"]), "the fixed twin arrives on B")
    assert copy["subject"] == "boom goes the printer"
    wait_for(lambda: not twin_of(a, bad["id"])["last_error"], "A's view of the error clears")


def deactivate(side: LiveSide) -> None:
    side.shell(
        "from connections.models import Connection\n"
        "from connections.services.actions import deactivate_connection\n"
        f"deactivate_connection(Connection.objects.get(pk={side.connection_id!r}))"
    )


def activate(side: LiveSide) -> None:
    side.shell(
        "from connections.models import Connection\n"
        "from connections.services.actions import activate_connection\n"
        f"activate_connection(Connection.objects.get(pk={side.connection_id!r}))"
    )


@pytest.mark.parametrize("where", ["a", "b"])
def test_changes_made_while_deactivated_arrive_once_activated_again(sides, where):
    a, b = sides
    request = a.create(f"Paused on {where}")
    copy = copy_on(b, a, request["id"])
    side = a if where == "a" else b
    deactivate(side)
    try:
        a.update(request["id"], subject=f"Paused on {where}, then edited")
        quiet([a, b], for_seconds=6)
        assert b.api("GET", f"/requests/{copy['id']}")["subject"] == f"Paused on {where}"
    finally:
        activate(side)
    wait_for(
        lambda: (
            b.api("GET", f"/requests/{copy['id']}")["subject"] == f"Paused on {where}, then edited"
        ),
        "the queued change arrives",
        timeout=120,
    )


def test_an_unexalated_request_is_updated_no_more(sides):
    a, b = sides
    request = a.create("Soon unexalated")
    copy = copy_on(b, a, request["id"])
    a.node.manage("unexalate", a.connection_id, str(request["id"]))
    twin_id = twin_of(a, request["id"])["twin_id"]
    wait_for(
        lambda: any(
            t["twin_id"] == twin_id and t["status"] == "closed" for t in b.status()["twins"]
        ),
        "B closes the twin too",
    )
    a.update(request["id"], subject="Changed after unexalate")
    quiet([a, b])
    assert b.api("GET", f"/requests/{copy['id']}")["subject"] == "Soon unexalated"


def test_a_side_without_a_url_pulls_what_waits_for_it_and_pushes_its_own(sides):
    """B is not public (a private network). On a second connection A is given no URL for
    B, so A never calls B for it: every change crosses by B's worker, pulled from A or
    pushed to A. (On the first, A has B's URL from its wizard and pushes as usual.)"""
    a_side, b_side = sides
    # The same nodes, workers and accounts; another connection between them.
    a = dataclasses.replace(a_side, name="a-private", worker=None)
    b = dataclasses.replace(b_side, worker=None)
    connect(a, b, query="category=rfc", without_url=True)

    request = a.create("Badge reader broken", category="rfc")
    copy = copy_on(b, a, request["id"])
    assert copy["subject"] == "Badge reader broken"
    b.update(copy["id"], subject="Badge reader broken, 3rd floor")
    wait_for(
        lambda: (
            a.api("GET", f"/requests/{request['id']}")["subject"]
            == "Badge reader broken, 3rd floor"
        ),
        "B's edit reaches A by push",
    )
    a.update(request["id"], impact="high")
    wait_for(
        lambda: b.api("GET", f"/requests/{copy['id']}")["impact"] == "high",
        "A's next edit reaches B by pull",
    )
    out = a.shell(
        "from sync.models import SyncEvent\n"
        f"e = SyncEvent.objects.filter(connection_id={a.connection_id!r})\n"
        "print(e.count(), e.filter(pull_cursor__isnull=True).count())"
    )
    made, pushed = map(int, out.splitlines()[-1].split())
    assert made >= 2 and pushed == 0  # every event for B waited for B's pull

    # A's admin switches A's side off, then on: B, which A cannot call, hears of each
    # at its next pull.
    load = "from connections.models import Connection\nfrom connections.services import actions\n"
    for action, heard in (("deactivate", "deactivated"), ("activate", "active")):
        a.shell(
            f"{load}actions.{action}_connection(Connection.objects.get(pk={a.connection_id!r}))"
        )
        wait_for(
            lambda heard=heard: (
                b.shell(
                    f"{load}print(Connection.objects.get(pk={b.connection_id!r}).remote_status)"
                ).splitlines()[-1]
                == heard
            ),
            f"B hears by its pull that A's side is {heard}",
            timeout=30,
        )
