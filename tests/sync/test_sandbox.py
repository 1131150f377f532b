"""The sync rules sandbox: compiling, the default scripts, and what a script cannot do."""

import copy
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import (
    DEFAULT_INCOMING,
    DEFAULT_OUTGOING,
    SAMPLE_REPLICA,
    SAMPLE_REQUEST,
    RulesError,
    ScriptError,
    check_script,
    compile_rules,
    compile_script,
    run_incoming,
    run_outgoing,
)
from sync.defaults import BASIC_INCOMING, BASIC_OUTGOING
from sync.entity import TEAM_NEEDED, entity_from_request, merge_attachments, merge_comments
from sync.sandbox import (
    OUTPUT_LIMIT,
    PRINT_LIMIT,
    SCRIPT_MAX_LENGTH,
    STARTUP_ALLOWANCE,
    TIME_LIMIT,
    execute,
)


def only_problem(outcome):
    assert outcome.ok is False
    assert len(outcome.problems) == 1
    return outcome.problems[0]


# --- compiling --------------------------------------------------------------------------------


def test_the_default_and_basic_scripts_compile():
    compile_rules(DEFAULT_OUTGOING, DEFAULT_INCOMING)
    compile_rules(BASIC_OUTGOING, BASIC_INCOMING)


def test_a_syntax_error_is_reported_with_its_line_and_reason():
    problems = check_script("replica.summary = entity.summary\n\nreplica.key = (\n", "outgoing")
    assert len(problems) == 1
    assert problems[0].line == 3
    assert "never closed" in problems[0].message
    assert problems[0].source_line == "replica.key = ("
    assert str(problems[0]).startswith("Line 3: ")


def test_compile_rules_names_each_script_that_does_not_compile():
    with pytest.raises(RulesError) as caught:
        compile_rules("replica.summary = entity.summary", "if first_sync\n    pass")
    assert list(caught.value.problems) == ["incoming"]
    assert caught.value.problems["incoming"][0].line == 1


@pytest.mark.parametrize(
    "source",
    ["import os", "from os import path", "import json as data", "from . import models"],
)
def test_imports_are_refused_when_compiling(source):
    problems = check_script(f"replica.key = entity.key\n{source}\n", "outgoing")
    assert [p.line for p in problems] == [2]
    assert "Imports are not allowed" in problems[0].message


@pytest.mark.parametrize(
    "source",
    [
        "x = entity.__class__",
        "x = entity._data",
        "x = replica.__dict__",
        "_secret = 1",
        "def f(_x):\n    return _x",
        "x = [].__class__.__mro__",
    ],
)
def test_names_and_attributes_with_an_underscore_are_refused(source):
    problems = check_script(source, "incoming")
    assert problems
    assert all(p.line is not None for p in problems)
    assert all('"_' in p.message for p in problems)


@pytest.mark.parametrize(
    "name", ["open", "eval", "exec", "compile", "getattr", "globals", "vars", "type", "input"]
)
def test_file_network_and_code_access_are_refused_when_compiling(name):
    problems = check_script(f"replica.a = 1\nreplica.b = {name}('x')\n", "outgoing")
    assert problems
    assert {p.line for p in problems} == {2}
    assert any(f'"{name}"' in p.message for p in problems)


def test_a_dunder_import_is_refused():
    assert check_script("os = __import__('os')", "outgoing")


def test_a_class_definition_is_refused():
    problems = check_script("class Thing:\n    pass\n", "outgoing")
    assert problems[0].line == 1


def test_a_script_longer_than_the_limit_is_refused():
    problems = check_script("#" * (SCRIPT_MAX_LENGTH + 1), "outgoing")
    assert "longer than" in problems[0].message


def test_a_nul_character_is_refused_without_crashing():
    assert check_script("replica.a = 1\x00", "outgoing")


def test_a_statement_the_compiler_refuses_is_reported_with_its_line():
    problems = check_script("replica.a = 1\nreturn replica\n", "outgoing")
    assert problems[0].line == 2


def test_compile_script_raises_a_script_error():
    with pytest.raises(ScriptError):
        compile_script("def (", "outgoing")


# --- the default scripts on the samples ---------------------------------------------------------


def test_default_outgoing_copies_the_request_into_the_replica():
    outcome = run_outgoing(DEFAULT_OUTGOING, SAMPLE_REQUEST)
    assert outcome.ok, outcome.problems
    replica = outcome.result
    assert replica["key"] == "70412"
    assert replica["summary"] == SAMPLE_REQUEST["subject"]
    assert replica["description"] == SAMPLE_REQUEST["notes"][0]["text"]
    assert replica["status"] == "in_progress"
    assert replica["priority"] == "medium"
    assert replica["category"] == "incident"
    assert replica["assignee"] == {"id": 812, "name": "Priya Raman"}
    assert replica["reporter"]["name"] == "Tomás Alvarez"
    assert replica["labels"] == []
    # Internal notes and their files stay home.
    assert [c["id"] for c in replica["comments"]] == [5502]
    assert [a["filename"] for a in replica["attachments"]] == ["vpn-client.log"]


def test_default_incoming_maps_names_and_merges_comments_and_attachments():
    outcome = run_incoming(DEFAULT_INCOMING, SAMPLE_REPLICA, SAMPLE_REQUEST)
    assert outcome.ok, outcome.problems
    entity = outcome.result
    assert entity["status"] == "in_progress"  # "In Progress" on the other side
    assert entity["priority"] == "high"  # "High" on the other side
    assert entity["labels"] == ["vpn", "remote-work"]
    assert entity["comments"][-1]["remote_id"] == "10931"
    assert len(entity["comments"]) == 3
    assert entity["attachments"][-1]["filename"] == "tunnel-trace.pcap"
    changed = {c.field for c in outcome.changes}
    assert changed == {"description", "priority", "labels", "comments", "attachments"}
    assert outcome.warnings == []


def test_default_incoming_fills_in_the_required_fields_on_the_first_sync():
    outcome = run_incoming(DEFAULT_INCOMING, SAMPLE_REPLICA, None)
    assert outcome.ok, outcome.problems
    entity = outcome.result
    assert entity["category"] == "incident"
    assert entity["team"] == "Service Desk"
    assert "service" not in entity
    assert entity["summary"] == SAMPLE_REPLICA["summary"]
    assert outcome.before == {}
    assert all(c.before is None for c in outcome.changes)
    assert outcome.warnings == []
    # The test run says the team is given by name and looked up when the sync writes.
    assert len(outcome.notes) == 1
    assert "entity.team is given by name ('Service Desk')" in outcome.notes[0]


def test_a_first_sync_without_a_team_is_told_to_set_entity_team():
    outcome = run_incoming('entity.category = "rfi"\nentity.summary = "x"', {}, None)
    assert outcome.warnings == [TEAM_NEEDED]
    assert "set entity.team in the incoming script" in TEAM_NEEDED


def test_a_team_given_by_id_needs_no_lookup_note():
    script = 'entity.team = 12\nentity.category = "rfi"\nentity.summary = "x"'
    outcome = run_incoming(script, {}, None)
    assert outcome.warnings == []
    assert outcome.notes == []


def test_a_new_incident_without_an_impact_gets_a_warning():
    script = 'entity.team = 12\nentity.category = "incident"\nentity.summary = "x"'
    outcome = run_incoming(script, {}, None)
    assert outcome.warnings == [
        "A new Xurrent incident needs an impact: set entity.priority (low, medium, high or "
        "top) in the incoming script's first_sync part."
    ]


def test_an_unchanged_team_name_on_a_later_sync_gets_no_note():
    script = 'entity.team = "Network Operations"\nentity.assignee = "Lena Fischer"'
    outcome = run_incoming(script, SAMPLE_REPLICA, SAMPLE_REQUEST)
    assert [n.split(" is given")[0] for n in outcome.notes] == ["entity.assignee"]
    assert "name or email address" in outcome.notes[0]


def test_an_unknown_remote_status_leaves_the_local_status():
    replica = {**SAMPLE_REPLICA, "status": "Escalated to vendor"}
    outcome = run_incoming(DEFAULT_INCOMING, replica, SAMPLE_REQUEST)
    assert outcome.result["status"] == "in_progress"


def test_incoming_warns_about_values_xurrent_would_refuse():
    outcome = run_incoming(
        'entity.status = "Done"\nentity.priority = "urgent"', SAMPLE_REPLICA, SAMPLE_REQUEST
    )
    assert outcome.ok
    assert any("'Done'" in w for w in outcome.warnings)
    assert any("'urgent'" in w for w in outcome.warnings)


def test_a_first_sync_without_summary_gets_a_warning():
    outcome = run_incoming('entity.category = "incident"', {}, None)
    assert any("summary" in w for w in outcome.warnings)


def test_running_does_not_change_the_samples():
    request, replica = copy.deepcopy(SAMPLE_REQUEST), copy.deepcopy(SAMPLE_REPLICA)
    run_outgoing(DEFAULT_OUTGOING, request)
    run_incoming(DEFAULT_INCOMING, replica, request)
    assert request == SAMPLE_REQUEST
    assert replica == SAMPLE_REPLICA


# --- sandbox limits ---------------------------------------------------------------------------


def _worker_children() -> list[int]:
    """Sandbox workers started by this test process that are still there."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"sync.worker" in cmdline:
            found.append(int(proc.name))
    return found


def test_an_endless_loop_is_stopped_at_the_time_limit_with_its_line():
    started = time.monotonic()
    outcome = run_outgoing("n = 0\nwhile True:\n    n += 1\n", SAMPLE_REQUEST)
    elapsed = time.monotonic() - started
    problem = only_problem(outcome)
    assert "stopped" in problem.message
    assert problem.line in (2, 3)
    assert TIME_LIMIT <= elapsed < TIME_LIMIT + STARTUP_ALLOWANCE
    assert _worker_children() == []


def test_a_loop_that_swallows_the_interruption_is_stopped_too():
    source = (
        "while True:\n    try:\n        while True:\n            pass\n    except:\n        pass\n"
    )
    started = time.monotonic()
    outcome = run_outgoing(source, SAMPLE_REQUEST)
    assert "stopped" in only_problem(outcome).message
    assert time.monotonic() - started < TIME_LIMIT + STARTUP_ALLOWANCE + 1
    assert _worker_children() == []


def test_a_huge_allocation_fails_with_its_line():
    problem = only_problem(run_outgoing("replica.a = 1\nx = 'x' * (10 ** 10)\n", SAMPLE_REQUEST))
    assert problem.line == 2
    assert "memory" in problem.message


def test_a_runtime_error_is_reported_with_its_line():
    source = (
        "replica.summary = entity.summary\nreplica.x = entity.assignee.name\nreplica.y = 1 / 0\n"
    )
    problem = only_problem(run_outgoing(source, SAMPLE_REQUEST))
    assert problem.line == 3
    assert problem.message == "ZeroDivisionError: division by zero"
    assert problem.source_line == "replica.y = 1 / 0"


def test_an_error_inside_a_function_points_at_the_script_line():
    source = "def first(items):\n    return items[0]\n\nreplica.label = first(entity.labels)\n"
    problem = only_problem(run_outgoing(source, SAMPLE_REQUEST))
    assert problem.line == 2
    assert problem.message.startswith("IndexError")


def test_a_missing_field_reads_as_none():
    outcome = run_outgoing("replica.x = entity.no_such_field", SAMPLE_REQUEST)
    assert outcome.result == {"x": None}


def test_print_output_is_shown_and_capped():
    outcome = run_outgoing("for i in range(100000):\n    print(i)\n", SAMPLE_REQUEST)
    assert outcome.ok
    assert outcome.printed.startswith("0\n1\n2\n")
    assert len(outcome.printed) < PRINT_LIMIT + 100
    assert "cut" in outcome.printed


def test_a_replica_larger_than_the_limit_is_refused():
    outcome = run_outgoing(f"replica.big = 'x' * {OUTPUT_LIMIT + 1}", SAMPLE_REQUEST)
    assert "larger than" in only_problem(outcome).message


def test_values_that_are_not_json_are_refused():
    outcome = run_outgoing("replica.tags = {'a', 'b'}", SAMPLE_REQUEST)
    assert "set" in only_problem(outcome).message


def test_replacing_the_replica_is_refused():
    outcome = run_outgoing("replica = 'nothing'", SAMPLE_REQUEST)
    assert "must stay an object" in only_problem(outcome).message


def test_string_format_is_refused_at_run_time():
    problem = only_problem(run_outgoing("replica.s = '{0.__class__}'.format(1)", SAMPLE_REQUEST))
    assert problem.line == 1


def test_frames_cannot_be_reached_through_a_generator():
    source = "g = (x for x in [1])\nreplica.f = g.gi_frame\n"
    assert check_script(source, "outgoing")[0].line == 2


def test_ordinary_python_works_in_the_sandbox():
    source = (
        "counts = {}\n"
        "for c in entity.comments:\n"
        "    counts[c.author] = counts.get(c.author, 0) + 1\n"
        "total = 0\n"
        "total += len(entity.attachments)\n"
        "first, *rest = sorted(counts)\n"
        "replica.counts = counts\n"
        "replica.total = total\n"
        "replica.first = first\n"
        "replica.names = [p['name'] for p in [entity.assignee, entity.reporter]]\n"
    )
    outcome = run_outgoing(source, SAMPLE_REQUEST)
    assert outcome.ok, outcome.problems
    assert outcome.result["counts"] == {"Priya Raman": 2}
    assert outcome.result["total"] == 2
    assert outcome.result["names"] == ["Priya Raman", "Tomás Alvarez"]


def test_execute_in_process_gives_the_same_replica_as_the_worker():
    entity = entity_from_request(SAMPLE_REQUEST)
    answer = execute("outgoing", DEFAULT_OUTGOING, {"entity": entity})
    assert answer["ok"]
    assert answer["result"] == run_outgoing(DEFAULT_OUTGOING, SAMPLE_REQUEST).result


# --- the request view and the merge helpers -------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
request_keys = st.sampled_from(
    ["id", "subject", "notes", "member", "team", "requested_by", "custom_fields", "attachments"]
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(request_keys | st.text(max_size=8), json_values, max_size=8))
def test_any_json_request_gives_an_entity_without_failing(request):
    entity = entity_from_request(request)
    assert isinstance(entity["comments"], list)
    assert isinstance(entity["attachments"], list)


def test_merging_twice_adds_a_remote_comment_once_and_takes_its_edits():
    local = [{"id": 1, "body": "ours"}]
    remote = [{"id": "r1", "author": "Lena", "body": "theirs"}]
    once = merge_comments(local, remote)
    twice = merge_comments(once, [{"id": "r1", "author": "Lena", "body": "theirs, edited"}])
    assert [c["body"] for c in twice] == ["ours", "theirs, edited"]


def test_a_comment_that_came_from_us_is_not_copied_back():
    local = [{"id": 1, "body": "ours"}]
    echoed = [{"id": "r9", "remote_id": 1, "body": "ours"}]
    assert merge_comments(local, echoed) == local


def test_merging_attachments_adds_each_remote_file_once():
    once = merge_attachments([], [{"id": "a1", "filename": "log.txt"}])
    twice = merge_attachments(once, [{"id": "a1", "filename": "log.txt"}])
    assert [a["remote_id"] for a in twice] == ["a1"]


def test_merging_something_that_is_not_a_list_of_objects_fails_with_its_line():
    outcome = run_incoming("entity.comments = merge_comments(entity.comments, 'hi')", {}, None)
    problem = only_problem(outcome)
    assert problem.line == 1
    assert "list of objects" in problem.message


def test_a_sandbox_pool_runs_scripts_of_several_threads_side_by_side():
    from concurrent.futures import ThreadPoolExecutor

    from sync.sandbox import SandboxPool

    pool = SandboxPool(2)
    slow = "n = 0\nfor i in range(200000):\n    n = n + 1\nreplica.summary = entity.summary"
    job = {"direction": "outgoing", "source": slow, "entity": {"summary": "Printer"}}
    try:
        with ThreadPoolExecutor(2) as threads:
            outcomes = list(threads.map(lambda _: pool.run(job), range(4)))
        # Each script got its answer, and both workers took some (neither queued behind one).
        assert [o.result["summary"] for o in outcomes] == ["Printer"] * 4
        assert all(worker._jobs for worker in pool.workers)
    finally:
        pool.close()
