"""`make bench` itself, in the cheap parts only: its arguments, its verdicts, and what it
prints when the served cases cannot run. The benchmarks are never run by the tests."""

import pytest

from bench import run
from bench.table import NotRun, Row, print_table


def test_the_bench_takes_quick_strict_and_one_kind_of_case():
    args = run.parse_args(["--quick", "--strict", "--only", "served"])
    assert (args.quick, args.strict, args.only) == (True, True, "served")
    assert run.parse_args([]).only is None


def test_the_bench_refuses_an_unknown_kind_of_case():
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "everything"])


def test_a_throughput_target_is_a_floor_and_any_other_a_ceiling():
    assert Row("accept", "insert", 30.0, 100.0, 0.3, unit="req/s").ok
    assert not Row("accept", "insert", 20.0, 100.0, 0.3, unit="req/s").ok
    assert Row("page", "page at 100", 0.12, 0.1, 1.5).ok
    assert not Row("rss", "bare", 90.0, 60.0, 1.3, unit="MB").ok


def test_served_cases_without_postgresql_are_listed_as_not_run_with_the_reason(monkeypatch, capsys):
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    monkeypatch.setenv("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:1/postgres")
    assert run.main(["--only", "served", "--strict"]) == 0
    out = capsys.readouterr().out
    assert "Connections page at 10,000: time" in out
    assert "NOT RUN" in out
    assert "PostgreSQL not reachable at postgres://postgres@127.0.0.1:1/postgres: " in out


def test_the_editor_case_without_chromium_is_listed_as_not_run_with_the_reason(monkeypatch):
    monkeypatch.setattr("bench.editor_page.CHROMIUM", "/nowhere/chromium")
    monkeypatch.delenv("CI", raising=False)
    rows, not_run = run.editor_page_rows(quick=True)
    assert rows == []
    assert not_run == [NotRun([run.EDITOR_CASE], not_run[0].reason)]
    assert "/nowhere/chromium is missing" in not_run[0].reason


def test_the_editor_case_runs_alone_with_only_editor(monkeypatch, capsys):
    monkeypatch.setattr("bench.editor_page.CHROMIUM", "/nowhere/chromium")
    monkeypatch.delenv("CI", raising=False)
    assert run.main(["--only", "editor", "--strict"]) == 0
    out = capsys.readouterr().out
    assert run.EDITOR_CASE in out and "NOT RUN" in out
    assert "Connections page at 10,000: time" not in out  # nothing else was asked


def test_the_editor_pages_take_turns_and_neither_always_goes_first():
    from bench.editor_page import best_times

    class Timer:
        def __init__(self):
            self.order = []
            self.times = {
                "editor": iter([0.09, 0.07, 0.08, 0.10]),
                "plain": iter([0.05, 0.06, 0.04, 0.05]),
            }

        def with_editor(self):
            self.order.append("editor")
            return next(self.times["editor"])

        def plain(self):
            self.order.append("plain")
            return next(self.times["plain"])

    timer = Timer()
    assert best_times(timer, 4) == (0.07, 0.04)  # the best of each
    assert timer.order == ["editor", "plain", "plain", "editor"] * 2


def test_the_median_of_the_rounds_ratios_pairs_each_round_with_itself():
    from bench.editor_page import median_round_ratio

    # Rounds 1.8x, 1.2x and 1.25x: the median is 1.25x, whatever the best times say.
    assert median_round_ratio([0.09, 0.06, 0.10], [0.05, 0.05, 0.08]) == pytest.approx(1.25)


def test_in_ci_the_editor_case_without_chromium_fails(monkeypatch):
    monkeypatch.setattr("bench.editor_page.CHROMIUM", "/nowhere/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(SystemExit, match="/nowhere/chromium is missing"):
        run.editor_page_rows(quick=True)


def test_the_table_shows_each_ratio_against_its_target_and_marks_a_miss(capsys):
    rows = [
        Row("accept", "insert", 20.0, 100.0, 0.3, unit="req/s", note="4 clients"),
        Row("rss", "bare", 70 * 2**20, 60 * 2**20, 1.3, unit="MB"),
    ]
    print_table(rows, [NotRun(["delivery"], "no peer here")])
    accept, rss, delivery = capsys.readouterr().out.splitlines()[2:5]
    assert "20.0 req/s" in accept and "0.20x" in accept and "≥ 0.3x" in accept
    assert accept.endswith("UNDER")
    assert "70.0 MB" in rss and "≤ 1.3x" in rss and rss.endswith("ok")
    assert delivery.startswith("delivery") and delivery.endswith("NOT RUN")


def test_sync_cases_without_postgresql_are_listed_as_not_run_with_the_reason(monkeypatch, capsys):
    monkeypatch.setenv("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:1/postgres")
    assert run.main(["--only", "sync", "--strict"]) == 0
    out = capsys.readouterr().out
    assert "sync queue claim (send) at 100,000 finished events" in out
    assert "change on A visible on B (webhook path)" in out
    assert "Connections page at 10,000: time" not in out  # the served cases were not asked
    assert "NOT RUN (4 cases): PostgreSQL not reachable at " in out


def test_a_claim_plan_names_the_indexes_it_reads_the_event_tables_by_and_any_seq_scan():
    from bench.sync_claims import plan_summary

    by_index = """Limit
  ->  LockRows
        ->  Nested Loop Anti Join
              ->  Seq Scan on connections_connection
              ->  Index Scan using sync_event_unsent_idx on sync_syncevent
              ->  Bitmap Index Scan on inbound_queued_idx"""
    assert plan_summary(by_index) == "plan: sync_event_unsent_idx, inbound_queued_idx"
    scanning = "Hash Join\n  ->  Seq Scan on sync_syncevent u0\n  ->  Seq Scan on sync_twin"
    assert plan_summary(scanning) == "plan: SEQ SCAN of sync_syncevent"


def test_a_claims_time_is_the_best_of_each_of_its_queries_without_the_benchs_savepoints():
    from bench.sync_claims import _QueryTimer

    ticks: list[float] = []
    timer = _QueryTimer(clock=lambda: ticks.pop(0))
    # Three rounds of a claim's queries (the first a warm-up): the seconds each took.
    for counted, seconds in ((False, [9, 9, 9]), (True, [0.3, 0.5, 0.4]), (True, [0.6, 0.2, 0.1])):
        timer.start(counted=counted)
        ticks[:] = [t for took in seconds for t in (0.0, took)]
        for sql in (
            "SELECT … FOR UPDATE",
            "SAVEPOINT s1",
            "UPDATE …",
            "RELEASE SAVEPOINT s1",
            "SELECT …",
        ):
            timer(lambda sql, params, many, context: None, sql, None, False, {})
    assert timer.best == [0.3, 0.2, 0.1]
