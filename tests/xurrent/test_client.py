"""The Xurrent client against the simulator over real HTTP: pages, filters, errors, limits,
retries, the time limit and the outbound guard."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from nodes import client as node_client
from tests.http_servers import answering, refusing
from tests.xurrent.conftest import ACCOUNT, NEW_REQUEST, TOKEN, create_requests, fast_budget
from xurrent.client import (
    REQUEST_FIELDS,
    Purpose,
    RateBudget,
    XurrentClient,
    XurrentError,
    filter_params,
    filters_from_query,
    xurrent_time,
)
from xurrent_sim.testing import running_simulator

REAL_GETADDRINFO = socket.getaddrinfo


def failure(call) -> XurrentError:
    with pytest.raises(XurrentError) as error:
        call()
    return error.value


def fake_dns(monkeypatch, table: dict[str, str]) -> None:
    def getaddrinfo(host, port, *args, **kwargs):
        if host in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- lists, pages and filters ------------------------------------------------------------------


def test_a_list_follows_the_next_links_over_several_pages(xurrent, sim):
    made = create_requests(xurrent, 250)
    listed = list(xurrent.list_requests())
    assert sorted(r["id"] for r in listed) == sorted(r["id"] for r in made)
    assert [r["id"] for r in listed] == sorted((r["id"] for r in listed), reverse=True)
    assert sim.stats()["endpoints"]["GET /v1/requests"] == 3  # 100 + 100 + 50


def test_pages_say_how_many_there_are_and_xurrents_time(xurrent):
    create_requests(xurrent, 5)
    pages = list(xurrent.request_pages(per_page=2))
    assert [len(page.items) for page in pages] == [2, 2, 1]
    assert {page.total_entries for page in pages} == {5}
    assert abs(pages[0].info.date - datetime.now(UTC)) < timedelta(minutes=1)
    assert pages[-1].info.rate_limit == 3600


def test_a_list_is_read_one_page_at_a_time(xurrent, sim):
    create_requests(xurrent, 5)
    listed = xurrent.list_requests(per_page=2)
    next(listed)
    assert sim.stats()["endpoints"]["GET /v1/requests"] == 1


def test_filters_are_sent_in_xurrents_syntax(xurrent):
    made = create_requests(xurrent, 3) + create_requests(xurrent, 2, category="rfc")
    rfcs = list(xurrent.list_requests({"category": "rfc"}))
    assert sorted(r["id"] for r in rfcs) == sorted(r["id"] for r in made[3:])
    assert len(list(xurrent.list_requests({"category": ["rfc", "incident"]}))) == 5
    ids = [r["id"] for r in xurrent.list_requests({"id": f">={made[1]['id']}", "category": "!rfc"})]
    assert sorted(ids) == [made[1]["id"], made[2]["id"]]
    assert list(xurrent.list_requests({"member": None})) != []  # empty: nobody assigned


def test_a_time_filter_is_written_in_utc(xurrent):
    create_requests(xurrent, 2)
    past = datetime.now(UTC) - timedelta(hours=1)
    assert len(list(xurrent.list_requests({"updated_at": f">={xurrent_time(past)}"}))) == 2
    future = datetime.now(UTC) + timedelta(hours=1)
    assert list(xurrent.list_requests({"updated_at": f">{xurrent_time(future)}"})) == []


def test_a_list_can_be_sorted_and_the_order_holds_over_pages(xurrent):
    create_requests(xurrent, 7)
    ascending = [r["id"] for r in xurrent.list_requests(sort="id", per_page=3)]
    assert ascending == sorted(ascending) and len(ascending) == 7
    by_update = [r["updated_at"] for r in xurrent.list_requests(sort="-updated_at", per_page=3)]
    assert by_update == sorted(by_update, reverse=True)


def test_filter_params_write_lists_datetimes_and_emptiness():
    moment = datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC)
    assert filter_params(
        {"status": ["assigned", "in_progress"], "updated_at": moment, "member": None, "team": 12}
    ) == {
        "status": "assigned,in_progress",
        "updated_at": "2026-11-28T10:00:05Z",
        "member": "",
        "team": "12",
    }


@pytest.mark.parametrize("name", ["per_page", "page", "sort", "a b", "x&y", ""])
def test_a_filter_that_is_not_a_field_is_refused_before_any_call(xurrent, sim, name):
    error = failure(lambda: list(xurrent.list_requests({name: "1"})))
    assert error.kind == "validation"
    assert sim.stats()["calls"] == {}


@pytest.mark.parametrize("per_page", [0, 101, "100"])
def test_a_page_size_xurrent_does_not_give_is_refused(xurrent, sim, per_page):
    assert failure(lambda: list(xurrent.list_requests(per_page=per_page))).kind == "validation"
    assert failure(lambda: list(xurrent.list_notes(1, per_page=per_page))).kind == "validation"
    assert sim.stats()["calls"] == {}


def test_a_filter_query_reads_as_xurrent_writes_it():
    assert filters_from_query("category=incident&team=12&updated_at=>=2026-11-28T10:00:00Z") == {
        "category": "incident",
        "team": "12",
        "updated_at": ">=2026-11-28T10:00:00Z",
    }
    assert filters_from_query("  ") == {}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("category", "field=value pairs"),
        ("team=1&team=2", "appears twice"),
        ("page=2", "not a filter"),
        ("bad name=1", "not a field"),
    ],
)
def test_a_filter_query_that_is_not_one_is_refused(query, message):
    error = failure(lambda: filters_from_query(query))
    assert error.kind == "validation"
    assert message in error.message


# --- reading and writing -----------------------------------------------------------------------


def test_a_request_is_created_read_and_updated(xurrent):
    made = xurrent.create_request(NEW_REQUEST)
    assert made["source"] == "exalate"  # X-4me-Source marks what the node wrote
    assert xurrent.get_request(made["id"])["subject"] == "Printer on fire"
    changed = xurrent.update_request(made["id"], {"subject": "Printer fixed"})
    assert changed["subject"] == "Printer fixed"
    assert xurrent.get_request(str(made["id"]))["subject"] == "Printer fixed"


def test_notes_are_added_and_listed(xurrent):
    made = xurrent.create_request(NEW_REQUEST)
    public = xurrent.add_note(made["id"], "Turned it off and on.")
    internal = xurrent.add_note(made["id"], "Between us: it was on fire.", internal=True)
    assert (public["internal"], internal["internal"]) == (False, True)
    notes = list(xurrent.list_notes(made["id"]))
    assert {n["id"] for n in notes} == {public["id"], internal["id"]}
    assert {n["text"] for n in notes} == {"Turned it off and on.", "Between us: it was on fire."}


def test_me_names_the_person_of_the_token_and_account_info_the_account(xurrent):
    assert xurrent.me()["name"]
    assert xurrent.account_info()["id"] == ACCOUNT


@pytest.mark.parametrize("bad_id", [0, -1, "1/../me", "12abc", True, None])
def test_an_id_that_is_not_a_record_id_never_reaches_a_path(xurrent, sim, bad_id):
    assert failure(lambda: xurrent.get_request(bad_id)).kind == "validation"
    assert sim.stats()["calls"] == {}


def test_the_client_is_made_from_the_general_settings(node, sim, private_allowed):
    node.xurrent_api_url = sim.url
    node.xurrent_account = ACCOUNT
    node.set_xurrent_token(TOKEN)
    node.save()
    client = XurrentClient.from_settings(budget=fast_budget())
    assert (client.base_url, client.account) == (sim.url, ACCOUNT)
    assert client.me()["id"]


@pytest.mark.parametrize(
    ("account", "token", "kind", "message"),
    [
        ("", TOKEN, "unknown_account", "No Xurrent account id is set"),
        (ACCOUNT, "", "bad_token", "No Xurrent API token is set"),
    ],
)
def test_a_node_without_account_or_token_gets_no_client(node, account, token, kind, message):
    node.xurrent_account = account
    node.set_xurrent_token(token)
    node.save()
    error = failure(XurrentClient.from_settings)
    assert error.kind == kind
    assert error.message.startswith(message)


# --- errors an admin can act on -----------------------------------------------------------------


def test_a_wrong_token_is_refused_with_401(make_client):
    error = failure(make_client(token="not-the-token").me)
    assert (error.kind, error.status) == ("bad_token", 401)
    assert error.message.startswith("The API token was refused (401")
    assert "not-the-token" not in error.message


def test_an_unknown_account_is_told_apart_from_a_bad_token(make_client):
    error = failure(make_client(account="nobody-here").me)
    assert error.kind == "unknown_account"
    assert "'nobody-here'" in error.message


def test_an_unknown_request_is_not_found_with_404(xurrent):
    error = failure(lambda: xurrent.get_request(987654))
    assert (error.kind, error.status) == ("not_found", 404)
    assert error.message == "Not found in Xurrent: request 987654 (404)."
    assert not error.retryable


def test_a_refused_write_lists_every_validation_error(xurrent, sim):
    error = failure(lambda: xurrent.create_request({"subject": "", "category": "incident"}))
    assert (error.kind, error.status) == ("validation", 422)
    assert error.message.startswith("Validation failed: subject can't be blank; ")
    assert "team_id can't be blank" in error.message
    assert len(error.errors) >= 2
    assert sim.writes() == 0


def test_a_refused_list_query_says_why(xurrent):
    error = failure(lambda: list(xurrent.list_requests({"no_such_field": "1"})))
    assert (error.kind, error.status) == ("validation", 400)
    assert "no_such_field" in error.message


# --- rate limits -------------------------------------------------------------------------------


def test_a_429_waits_for_retry_after_and_then_succeeds(xurrent, sim):
    sim.fault("rate_limit", retry_after=1, count=1)
    started = time.monotonic()
    assert xurrent.me()["id"]
    assert time.monotonic() - started >= 0.9
    assert sim.stats()["rate_limited"] == 1


def test_a_429_beyond_the_time_limit_fails_at_once_and_says_until_when(make_client, sim):
    budget = fast_budget()
    xurrent = make_client(time_limit=3, budget=budget)
    sim.fault("rate_limit", retry_after=120, count=1)
    started = time.monotonic()
    error = failure(xurrent.me)
    assert time.monotonic() - started < 2
    assert (error.kind, error.status) == ("rate_limited", 429)
    assert error.retry_at - datetime.now(UTC) > timedelta(seconds=100)
    assert error.message.startswith(f"Rate limited by Xurrent until {error.retry_at:%H:%M:%S} UTC")
    assert error.retryable
    # Every client of the account waits: the next call is not even sent.
    calls = sim.stats()["calls"]
    assert failure(make_client(time_limit=1, budget=budget).me).kind == "rate_limited"
    assert sim.stats()["calls"] == calls


def test_calls_stop_when_xurrent_says_none_are_left(private_allowed):
    with running_simulator(
        account=ACCOUNT, token=TOKEN, rate_limit=3, extra_args=["--quiet"]
    ) as limited:
        xurrent = XurrentClient(limited.url, ACCOUNT, TOKEN, time_limit=2, budget=fast_budget())
        for _ in range(3):
            xurrent.me()
        assert xurrent.last_answer.rate_remaining == 0
        error = failure(xurrent.me)
        assert error.kind == "rate_limited"
        assert error.retry_at - datetime.now(UTC) > timedelta(minutes=50)
        # Kept within the budget: Xurrent never had to refuse a call.
        assert limited.stats()["rate_limited"] == 0


def test_a_429_from_xurrents_own_budget_is_honoured_too(private_allowed):
    with running_simulator(
        account=ACCOUNT, token=TOKEN, rate_limit=1, extra_args=["--quiet"]
    ) as limited:
        first = XurrentClient(limited.url, ACCOUNT, TOKEN, time_limit=2, budget=fast_budget())
        first.me()
        # Another process that did not see the answer above: Xurrent itself refuses.
        other = XurrentClient(limited.url, ACCOUNT, TOKEN, time_limit=2, budget=fast_budget())
        error = failure(other.me)
        assert (error.kind, error.status) == ("rate_limited", 429)
        assert limited.stats()["rate_limited"] == 1


def test_the_token_bucket_allows_a_burst_then_the_hourly_pace():
    now = [1000.0]
    budget = RateBudget(per_hour=3600, burst=20, burst_seconds=2, clock=lambda: now[0])
    # 17 at once: with one more a second, no 2 s ever holds more than 19 calls. (Polls may
    # take the whole bucket; other purposes leave a part of it: tests/xurrent/test_budget.py.)
    assert [budget.wait_needed(Purpose.POLL) for _ in range(17)] == [0] * 17
    assert budget.wait_needed(Purpose.POLL) == pytest.approx(1.0)
    now[0] += 1.0
    assert budget.wait_needed(Purpose.POLL) == 0
    budget.pause(30)
    assert budget.wait_needed(Purpose.POLL) == pytest.approx(30)
    now[0] += 31
    assert budget.wait_needed(Purpose.POLL) == 0


def test_a_large_hourly_budget_is_still_paced_by_the_burst_limit():
    now = [0.0]
    budget = RateBudget(per_hour=100_000, burst=20, burst_seconds=2, clock=lambda: now[0])
    assert budget.wait_needed() == 0
    assert budget.wait_needed() == pytest.approx(1 / 9)  # 18 per 2 s, not 27 per second


def test_the_client_keeps_under_xurrents_burst_limit(private_allowed):
    with running_simulator(
        account=ACCOUNT, token=TOKEN, extra_args=["--quiet", "--burst-limit", "10"]
    ) as bursty:
        budget = RateBudget(per_hour=10**6, burst=10)
        xurrent = XurrentClient(bursty.url, ACCOUNT, TOKEN, time_limit=10, budget=budget)
        started = time.monotonic()
        for _ in range(12):
            xurrent.me()
        elapsed = time.monotonic() - started
        assert bursty.stats()["rate_limited"] == 0  # never refused
    assert 2.0 <= elapsed < 8


def test_without_a_bucket_the_burst_limit_answers_429(private_allowed):
    with running_simulator(
        account=ACCOUNT, token=TOKEN, extra_args=["--quiet", "--burst-limit", "3"]
    ) as bursty:
        xurrent = XurrentClient(bursty.url, ACCOUNT, TOKEN, budget=fast_budget(), time_limit=10)
        for _ in range(5):
            xurrent.me()  # the 4th is refused, waits for Retry-After and goes through
        assert bursty.stats()["rate_limited"] >= 1


def test_the_client_waits_for_the_bucket_rather_than_calling_too_fast(make_client, sim):
    # One at once, then 5 a second.
    xurrent = make_client(budget=RateBudget(per_hour=36_000, burst=2, burst_seconds=0.2))
    started = time.monotonic()
    for _ in range(5):
        xurrent.me()
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 3


# --- failures that pass: retries and the time limit -----------------------------------------------


def test_a_5xx_on_a_read_is_retried(xurrent, sim):
    made = xurrent.create_request(NEW_REQUEST)
    sim.fault("error", status=503, count=2, method="GET")
    assert xurrent.get_request(made["id"])["id"] == made["id"]
    assert sim.stats()["statuses"]["503"] == 2


def test_a_5xx_on_an_update_is_retried(xurrent, sim):
    made = xurrent.create_request(NEW_REQUEST)
    sim.fault("error", status=502, count=1, method="PATCH")
    assert xurrent.update_request(made["id"], {"subject": "Again"})["subject"] == "Again"


def test_a_create_answered_with_a_5xx_is_not_sent_twice(xurrent, sim):
    sim.fault("error", status=500, count=1, method="POST", store=True)
    error = failure(lambda: xurrent.create_request(NEW_REQUEST))
    assert (error.kind, error.status) == ("server_error", 500)
    assert error.uncertain
    assert sim.writes("POST") == 1  # stored once; the sync engine looks before writing again


def test_a_note_whose_answer_is_lost_is_not_sent_twice(xurrent, sim):
    made = xurrent.create_request(NEW_REQUEST)
    sim.fault("disconnect", count=1, method="POST", path="/notes")
    error = failure(lambda: xurrent.add_note(made["id"], "Once only"))
    assert (error.kind, error.uncertain) == ("unreachable", True)
    assert [n["text"] for n in xurrent.list_notes(made["id"])] == ["Once only"]


def test_a_read_that_times_out_is_tried_again(make_client, sim):
    xurrent = make_client(read_timeout=0.5)
    sim.fault("timeout", delay=3, count=1, method="GET")
    started = time.monotonic()
    assert xurrent.me()["id"]
    assert time.monotonic() - started < 2.5


def test_a_dropped_connection_on_a_read_is_tried_again(xurrent, sim):
    sim.fault("disconnect", count=1, method="GET")
    assert xurrent.me()["id"]


def test_server_errors_that_persist_end_at_the_time_limit(make_client, sim):
    xurrent = make_client(time_limit=1.0, retry_base=0.1)
    sim.fault("error", status=503, count=1000)
    started = time.monotonic()
    error = failure(xurrent.me)
    elapsed = time.monotonic() - started
    assert (error.kind, error.status) == ("server_error", 503)
    assert 0.25 <= elapsed < 2.5
    assert sim.stats()["statuses"]["503"] >= 3  # 0.1 + 0.2 + 0.4 s of pauses between tries


def test_an_address_where_nothing_listens_is_unreachable_within_the_time_limit(private_allowed):
    with refusing() as nothing:
        xurrent = XurrentClient(
            f"{nothing.url}/v1",
            ACCOUNT,
            TOKEN,
            time_limit=0.6,
            retry_base=0.05,
            budget=fast_budget(),
        )
        started = time.monotonic()
        error = failure(xurrent.me)
    assert time.monotonic() - started < 2
    assert error.kind == "unreachable"
    assert error.message.startswith(f"Could not reach {nothing.url}/v1")


# --- answers that are not Xurrent's -------------------------------------------------------------


def test_a_next_link_to_another_host_is_not_followed(private_allowed):
    with answering(200, []) as elsewhere:
        link = f'<{elsewhere.url}/v1/requests?page=2>; rel="next"'
        with answering(200, [{"id": 1}], headers={"Link": link}) as api:
            xurrent = XurrentClient(f"{api.url}/v1", ACCOUNT, TOKEN, budget=fast_budget())
            error = failure(lambda: list(xurrent.list_requests()))
    assert error.kind == "bad_answer"
    assert "points away from the API URL" in error.message
    assert elsewhere.requests == []  # the token never went there


@pytest.mark.parametrize(
    ("status", "body", "content_type", "message"),
    [
        (200, b"<html>hello</html>", "text/html", "not JSON"),
        (200, {"id": 1}, "application/json", "did not answer with a JSON list"),
        (302, b"", "text/html", "redirect"),
    ],
)
def test_an_answer_that_is_not_xurrents_is_a_bad_answer(
    private_allowed, status, body, content_type, message
):
    with answering(status, body, content_type, headers={"Location": "/elsewhere"}) as api:
        xurrent = XurrentClient(f"{api.url}/v1", ACCOUNT, TOKEN, budget=fast_budget())
        error = failure(lambda: list(xurrent.list_requests()))
    assert error.kind == "bad_answer"
    assert message in error.message


def test_an_answer_over_the_size_cap_is_refused(make_client):
    xurrent = make_client(max_response_bytes=2000)
    create_requests(xurrent, 5)
    error = failure(lambda: list(xurrent.list_requests()))
    assert error.kind == "bad_answer"
    assert "far too large" in error.message


# --- the outbound guard ------------------------------------------------------------------------


def test_a_public_looking_name_for_a_private_address_is_refused(sim, settings, monkeypatch):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    fake_dns(monkeypatch, {"api.xurrent.example": "127.0.0.1"})
    port = sim.url.split(":")[2].split("/")[0]
    xurrent = XurrentClient(
        f"http://api.xurrent.example:{port}/v1", ACCOUNT, TOKEN, budget=fast_budget()
    )
    error = failure(xurrent.me)
    assert error.kind == "unreachable"
    assert "private or local network address" in error.message
    assert "EXALATE_ALLOW_PRIVATE_NETWORKS" in error.message
    assert sim.stats()["calls"] == {}


def test_with_the_guard_on_pages_go_to_the_checked_address(sim, settings, monkeypatch):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    fake_dns(monkeypatch, {"api.xurrent.example": "127.0.0.1"})
    # Let the simulator's address count as public for this test only.
    real = node_client._is_forbidden
    monkeypatch.setattr(node_client, "_is_forbidden", lambda a: a != "127.0.0.1" and real(a))
    port = sim.url.split(":")[2].split("/")[0]
    xurrent = XurrentClient(
        f"http://api.xurrent.example:{port}/v1", ACCOUNT, TOKEN, budget=fast_budget()
    )
    create_requests(xurrent, 3)
    assert len(list(xurrent.list_requests(per_page=2))) == 3


# --- the token stays secret ----------------------------------------------------------------------


def test_the_token_never_reaches_logs_errors_or_reprs(make_client, sim, caplog):
    caplog.set_level(logging.DEBUG)
    xurrent = make_client()
    made = xurrent.create_request(NEW_REQUEST)
    list(xurrent.list_requests(per_page=1))
    xurrent.add_note(made["id"], "A note")
    sim.fault("error", status=503, count=1, method="GET")
    xurrent.me()
    errors = [
        failure(make_client(token=TOKEN + "x").me),
        failure(lambda: xurrent.get_request(999999)),
        failure(lambda: xurrent.create_request({})),
    ]
    texts = [caplog.text, repr(xurrent), *(str(e) for e in errors), *(repr(e) for e in errors)]
    assert caplog.text  # httpx did log the calls
    assert not [text for text in texts if TOKEN in text]


def test_requests_listed_by_id_with_their_fields_are_shown_whole(xurrent):
    made = create_requests(xurrent, 3)
    wanted = f"{made[0]['id']},{made[2]['id']}"
    (page,) = list(xurrent.request_pages({"id": wanted}, per_page=100, fields=REQUEST_FIELDS))
    assert sorted(r["id"] for r in page.items) == [made[0]["id"], made[2]["id"]]
    assert page.items[0] == xurrent.get_request(page.items[0]["id"])
    assert set(REQUEST_FIELDS) == set(page.items[0])
