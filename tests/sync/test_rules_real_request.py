"""The rules page's Test run on a real request of this node's account: read through the
Xurrent client, the scripts run on it, and nothing is stored or written."""

import html
import json

from sync import SAMPLE_REPLICA, SAMPLE_REQUEST
from sync.models import SyncRuleVersion, Twin
from tests.sync.tabkit import tab_url

OUT = "replica.summary = entity.summary\nreplica.description = entity.description\n"
IN = "entity.summary = replica.summary\n"


def data(**overrides):
    values = {
        "outgoing": OUT,
        "incoming": IN,
        "note": "",
        "based_on": "0",
        "sample_request": json.dumps(SAMPLE_REQUEST),
        "sample_replica": json.dumps(SAMPLE_REPLICA),
        "test_request_id": "",
    }
    return {**values, **overrides}


def run_test(client, connection, **overrides):
    return client.post(tab_url(connection, "rules_test_run"), data(**overrides))


def test_a_test_run_on_a_real_request_uses_it_as_xurrent_has_it(editor_client, connection, gateway):
    request = gateway.human_creates(subject="Printer on fire", category="incident", impact="low")
    gateway.human_adds_note(request["id"], "Smoke on the 2nd floor")
    response = run_test(editor_client, connection, test_request_id=f"#{request['id']}")
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    replica = page[page.index('id="replica">') : page.index("</pre>", page.index('id="replica">'))]
    assert '"summary": "Printer on fire"' in replica
    assert "Smoke on the 2nd floor" in replica
    assert f"Request #{request['id']} as read from Xurrent" in page
    assert f'href="http://127.0.0.1:8999/requests/{request["id"]}"' in page
    assert f"changes to request #{request['id']}" in page
    # The sample replica's summary would replace the request's.
    assert SAMPLE_REPLICA["summary"] in page[page.index('id="incoming-changes"') :]
    # Read, never written; nothing stored.
    assert dict(gateway.writes) == {} and gateway.calls["get"] == 1
    assert not SyncRuleVersion.objects.exists() and not Twin.objects.exists()


def test_a_test_run_on_an_unknown_request_says_so_and_runs_nothing_on_it(
    editor_client, connection, gateway
):
    response = run_test(editor_client, connection, test_request_id="99")
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "Xurrent has no request #99 in this node's account." in page
    assert 'id="replica"' not in page
    assert 'value="99"' in page


def test_a_test_run_on_something_that_is_no_request_id_is_refused(
    editor_client, connection, gateway
):
    response = run_test(editor_client, connection, test_request_id="the printer")
    assert response.status_code == 400
    assert "Enter a request id" in response.content.decode()
    assert gateway.calls["get"] == 0


def test_a_test_run_on_a_request_needs_the_xurrent_account(editor_client, connection, node):
    node.xurrent_api_token = ""
    node.save()
    response = run_test(editor_client, connection, test_request_id="5")
    assert response.status_code == 400
    assert "Xurrent account is not set up" in response.content.decode()


def test_without_a_request_id_the_test_run_uses_the_samples(editor_client, connection, gateway):
    response = run_test(editor_client, connection)
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert SAMPLE_REQUEST["subject"] in page[page.index('id="replica">') :]
    assert gateway.calls["get"] == 0


def test_a_viewer_cannot_test_run_on_a_real_request(client, viewer, connection, gateway):
    client.force_login(viewer)
    assert run_test(client, connection, test_request_id="1").status_code == 403
    assert gateway.calls["get"] == 0
