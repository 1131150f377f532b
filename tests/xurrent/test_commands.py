"""`python manage.py check_xurrent`: one line per check, and an error exit when one fails."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.http_servers import refusing
from tests.xurrent.conftest import TOKEN
from xurrent import services


def check(expect_failure: bool) -> list[str]:
    out = StringIO()
    if expect_failure:
        with pytest.raises(CommandError) as error:
            call_command("check_xurrent", stdout=out)
        assert str(error.value).startswith("Xurrent is not ready:")
    else:
        call_command("check_xurrent", stdout=out)
    text = out.getvalue()
    assert TOKEN not in text
    return text.splitlines()


def test_a_working_account_passes_every_check(configured, sim):
    lines = check(expect_failure=False)
    assert lines == [
        f"ok    API URL: {sim.url} answers.",
        "ok    API token: accepted, it belongs to Integration User.",
        "ok    Account: widget-test exists (Widget Test).",
        "ok    Rate budget: 3,598 of 3,600 calls left, renewed at "
        + lines[3].rsplit("renewed at ", 1)[1],
        "ok    Webhooks: calls to http://testserver/api/v1/xurrent/webhook/ are taken unsigned "
        "(no webhook policy key set).",
    ]


def test_a_refused_token_fails_with_a_message_to_act_on(configured, caplog):
    configured.set_xurrent_token("a-wrong-token")
    configured.save()
    caplog.set_level(logging.DEBUG)
    lines = check(expect_failure=True)
    assert lines[0].startswith("ok    API URL:")
    assert lines[1].startswith("FAIL  API token: The API token was refused (401")
    assert "a-wrong-token" not in "\n".join(lines) + caplog.text


def test_an_unknown_account_fails_on_the_account_line(configured):
    configured.xurrent_account = "not-this-one"
    configured.save()
    lines = check(expect_failure=True)
    assert "FAIL  Account: Xurrent does not know the account 'not-this-one'" in "\n".join(lines)


def test_an_address_where_nothing_answers_fails_on_the_url_line(configured, monkeypatch):
    monkeypatch.setattr(services, "CHECK_TIME_LIMIT", 0.5)
    with refusing() as nothing:
        configured.xurrent_api_url = f"{nothing.url}/v1"
        configured.save()
        lines = check(expect_failure=True)
    assert lines[0].startswith(f"FAIL  API URL: Could not reach {nothing.url}/v1")


def test_the_guard_is_reported_on_the_url_line(configured, settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    lines = check(expect_failure=True)
    assert "private or local network address" in lines[0]


def test_a_node_without_account_or_token_says_what_is_missing(node):
    lines = check(expect_failure=True)
    assert "FAIL  Account: no Xurrent account id is set." in lines
    assert "FAIL  API token: no API token is set." in lines


def test_a_spent_budget_fails_the_rate_line(configured, sim):
    sim.fault("rate_limit", retry_after=600, count=5)
    lines = check(expect_failure=True)
    assert any(
        line.startswith("FAIL  Rate budget: Rate limited by Xurrent until") for line in lines
    )
