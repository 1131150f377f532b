"""The sync commands: add_trigger, exalate, unexalate, bulk_exalate, sync_status."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sync.models import Trigger, Twin, TwinStatus
from sync.services.gateway import use_gateway


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_trigger_prints_the_trigger_id(pair):
    out = run("add_trigger", str(pair.a.connection.pk), "category=incident&team=1")
    trigger = Trigger.objects.get()
    assert out.strip() == str(trigger.pk)
    assert trigger.query == "category=incident&team=1"


def test_add_trigger_refuses_a_bad_query_and_stores_nothing(pair):
    with pytest.raises(CommandError, match="field=value"):
        run("add_trigger", str(pair.a.connection.pk), "just words")
    assert not Trigger.objects.exists()


def test_a_command_names_a_connection_that_is_not_here(pair):
    with pytest.raises(CommandError, match="No connection"):
        run("exalate", "not-an-id", "1")


def test_exalate_and_unexalate_one_request(pair):
    request = pair.a.xurrent.human_creates(subject="one", category="rfc")
    connection_id = str(pair.a.connection.pk)
    with use_gateway(pair.a.xurrent):
        out = run("exalate", connection_id, str(request["id"]))
    assert f"Request #{request['id']} is exalated" in out
    pair.sync()
    status = json.loads(run("sync_status", connection_id, "--json"))
    copy = pair.b.xurrent.all_requests()[0]
    assert status["twins"][0]["local_id"] == request["id"]
    assert status["twins"][0]["remote_id"] == str(copy["id"])
    assert status["twins"][0]["status"] == "open"
    assert status["twins"][0]["last_error"] is None
    assert status["queue"]["applied"] == 1

    out = run("unexalate", connection_id, str(request["id"]))
    assert "unexalated" in out
    assert Twin.objects.get(connection=pair.a.connection).status == TwinStatus.CLOSED
    with pytest.raises(CommandError, match="not synced"):
        run("unexalate", connection_id, str(request["id"]))


def test_exalate_refuses_a_request_xurrent_does_not_have(pair):
    with use_gateway(pair.a.xurrent), pytest.raises(CommandError, match="no request #42"):
        run("exalate", str(pair.a.connection.pk), "42")


def test_bulk_exalate_prints_its_counters(pair):
    for n in range(3):
        pair.a.xurrent.human_creates(subject=f"r{n}", category="incident", impact="low")
    connection_id = str(pair.a.connection.pk)
    run("add_trigger", connection_id, "category=incident")
    with use_gateway(pair.a.xurrent):
        out = run("bulk_exalate", connection_id)
        assert "found 3, exalated 3, skipped 0" in out
        again = run("bulk_exalate", connection_id)
    assert "found 3, exalated 0, skipped 3" in again


def test_sync_status_shows_a_blocked_twin_with_its_error(pair):
    pair.b.rules(incoming="entity.summary = replica.summary\nentity.x = 1 / 0\n")
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject="x", category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.sync()
    text = run("sync_status", str(pair.b.connection.pk))
    assert "blocked" in text
    assert "line 2" in text
    shown = json.loads(run("sync_status", str(pair.a.connection.pk), "--json"))
    assert "[other side]" in shown["twins"][0]["last_error"]
