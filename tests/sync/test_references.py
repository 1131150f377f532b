"""References an incoming script gives by name (a team, a person) become ids of this
side's Xurrent account; a name that matches nothing, or several, holds the twin."""

import pytest

from connections.models import Connection
from nodes.forms import XurrentAccountForm
from nodes.models import GeneralSettings, Mode
from sync.defaults import (
    BASIC_TEAM,
    DEFAULT_INCOMING,
    DEFAULT_OUTGOING,
    basic_fields,
    basic_incoming,
)
from sync.entity import TEAM_NEEDED
from sync.models import ErrorKind, SyncError, TwinStatus
from sync.services.apply import request_fields
from sync.services.errors import retry_twin
from sync.services.references import (
    MISS_REFRESH_AFTER,
    Directory,
    UnknownReference,
    assignment_line,
    forget_directories,
    reference_id,
)
from tests.sync.engine import INCOMING, OUTGOING
from tests.sync.fake_xurrent import FakeXurrent
from xurrent.client import XurrentError


@pytest.fixture(autouse=True)
def no_lists_kept_between_tests():
    forget_directories()
    yield
    forget_directories()


@pytest.fixture
def xurrent() -> FakeXurrent:
    """A fresh account: teams Service Desk (1), Network (2), Applications (3); people
    Sam Owner (1), Jo Agent (2), Kim Specialist (3)…"""
    return FakeXurrent("account-refs")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- one value ------------------------------------------------------------------------------


def test_a_team_name_becomes_its_id(xurrent):
    assert reference_id("team", "Network", xurrent) == 2
    assert reference_id("team", {"id": None, "name": "Applications"}, xurrent) == 3


def test_a_name_matches_regardless_of_case_and_spaces(xurrent):
    assert reference_id("team", "  service   desk ", xurrent) == 1


def test_an_id_is_taken_as_it_is_without_asking_xurrent(xurrent):
    assert reference_id("team", 7, xurrent) == 7
    assert reference_id("assignee", {"id": 4, "name": "whoever"}, xurrent) == 4
    assert xurrent.calls["teams"] == xurrent.calls["people"] == 0


def test_a_person_is_found_by_name_or_by_email(xurrent):
    assert reference_id("assignee", "Kim Specialist", xurrent) == 3
    assert reference_id("reporter", "JO.AGENT@example.com", xurrent) == 2
    assert reference_id("requested_by", {"email": "lee.customer@example.com"}, xurrent) == 4


def test_a_team_that_does_not_exist_is_an_error_naming_the_field_and_the_name(xurrent):
    with pytest.raises(UnknownReference) as caught:
        reference_id("team", "Helpdesk", xurrent)
    assert caught.value.field == "team"
    assert "No team named 'Helpdesk' in this Xurrent account" in caught.value.message
    assert "entity.team" in caught.value.message


def test_an_unknown_person_is_an_error_too(xurrent):
    with pytest.raises(UnknownReference, match="No person named 'nobody@example.com'"):
        reference_id("assignee", "nobody@example.com", xurrent)


def test_a_name_shared_by_two_teams_is_an_error_listing_their_ids(xurrent):
    xurrent.store.data["teams"].append({"id": 9, "name": "Network", "members": []})
    with pytest.raises(UnknownReference) as caught:
        reference_id("team", "Network", xurrent)
    assert "Several teams in this Xurrent account are named 'Network' (ids 2, 9)" in (
        caught.value.message
    )


def test_a_service_instance_by_name_is_refused_not_dropped(xurrent):
    with pytest.raises(UnknownReference, match="service instance can only be given by its id"):
        reference_id("service", "End-User Support", xurrent)


def test_a_list_the_token_may_not_read_is_an_error_saying_so(xurrent):
    xurrent.fail_next("people", "not_found")
    with pytest.raises(UnknownReference, match="person list could not be read"):
        reference_id("assignee", "Jo Agent", xurrent)


def test_a_list_xurrent_cannot_give_now_is_tried_again_later(xurrent):
    xurrent.fail_next("teams", "rate_limited")
    with pytest.raises(XurrentError) as caught:
        reference_id("team", "Network", xurrent)
    assert caught.value.retryable
    assert reference_id("team", "Network", xurrent) == 2


def test_a_value_that_is_no_name_nor_id_is_refused(xurrent):
    with pytest.raises(UnknownReference, match="must be a team's name or id"):
        reference_id("team", ["Network"], xurrent)


def test_the_list_is_read_once_within_its_time_then_again(xurrent):
    clock = Clock()
    directory = Directory(ttl=60, clock=clock)
    for name in ("Network", "Service Desk", "Applications"):
        reference_id("team", name, xurrent, directory)
    assert xurrent.calls["teams"] == 1
    clock.now += 61
    reference_id("team", "Network", xurrent, directory)
    assert xurrent.calls["teams"] == 2


def test_a_team_made_after_the_list_was_read_is_found_on_retry(xurrent):
    clock = Clock()
    directory = Directory(ttl=600, clock=clock)
    reference_id("team", "Network", xurrent, directory)
    xurrent.store.data["teams"].append({"id": 4, "name": "Field Service", "members": []})
    clock.now += MISS_REFRESH_AFTER + 1
    assert reference_id("team", "Field Service", xurrent, directory) == 4
    assert xurrent.calls["teams"] == 2


def test_the_line_that_sets_the_field_is_found():
    script = 'if first_sync:\n    entity.team = "Helpdesk"\nentity.summary = replica.summary\n'
    assert assignment_line(script, "team") == (2, 'entity.team = "Helpdesk"')
    assert assignment_line(script, "assignee") == (None, "")
    assert assignment_line("if entity.team == 1:\n    pass\n", "team") == (None, "")


# --- the fields written ------------------------------------------------------------------------


def test_request_fields_write_the_id_a_name_stands_for(xurrent):
    fields = request_fields(
        {},
        {"summary": "x", "team": "Network", "assignee": "jo.agent@example.com"},
        first_sync=True,
        reference=lambda field, value: reference_id(field, value, xurrent),
    )
    assert fields == {"subject": "x", "team_id": 2, "member_id": 2}


def test_a_name_of_what_the_request_has_already_writes_nothing(xurrent):
    before = {"team": {"id": 2, "name": "Network"}, "assignee": {"id": 3, "name": "Kim"}}
    after = {"team": "Network", "assignee": "kim.specialist@example.com"}
    fields = request_fields(
        before,
        after,
        first_sync=False,
        reference=lambda field, value: reference_id(field, value, xurrent),
    )
    assert fields == {}
    assert xurrent.calls["teams"] == 0  # the same name: not even looked up


# --- in the engine -----------------------------------------------------------------------------


def start(pair, subject: str) -> dict:
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject=subject, category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.sync()
    return request


def test_the_default_rules_unchanged_create_the_request_in_the_named_team(pair):
    pair.a.rules(DEFAULT_OUTGOING, DEFAULT_INCOMING)
    pair.b.rules(DEFAULT_OUTGOING, DEFAULT_INCOMING)
    start(pair, "Default rules")
    [copy] = pair.b.xurrent.all_requests()
    assert copy["team"] == {"id": 1, "name": "Service Desk"}
    assert (copy["subject"], copy["category"], copy["impact"]) == (
        "Default rules",
        "incident",
        "low",
    )
    assert not SyncError.objects.exists()


def test_a_team_name_the_account_lacks_holds_the_twin_until_it_exists_and_retry(pair):
    missing = INCOMING.replace(
        'entity.team = {"id": 1, "name": "Service Desk"}', 'entity.team = "Helpdesk"'
    )
    pair.b.rules(OUTGOING, missing)
    start(pair, "Nowhere to go")
    assert pair.b.xurrent.all_requests() == []
    assert pair.b.xurrent.calls["create"] == 0
    error = SyncError.objects.get(connection=pair.b.connection)
    assert error.kind == ErrorKind.SCRIPT
    assert error.blocking
    assert "No team named 'Helpdesk' in this Xurrent account" in error.message
    assert error.line == missing.splitlines().index('    entity.team = "Helpdesk"') + 1
    assert error.twin.status == TwinStatus.BLOCKED

    pair.b.xurrent.store.data["teams"].append({"id": 4, "name": "Helpdesk", "members": []})
    forget_directories()  # the worker's list is older than MISS_REFRESH_AFTER by then
    retry_twin(error.twin)
    pair.sync()
    [copy] = pair.b.xurrent.all_requests()
    assert copy["team"]["id"] == 4


def test_a_script_that_sets_no_team_is_told_so_before_xurrent_is_asked(pair):
    pair.b.rules(
        OUTGOING, INCOMING.replace('    entity.team = {"id": 1, "name": "Service Desk"}\n', "")
    )
    start(pair, "No team")
    assert pair.b.xurrent.calls["create"] == 0
    error = SyncError.objects.get(connection=pair.b.connection)
    assert error.kind == ErrorKind.SCRIPT
    assert TEAM_NEEDED in error.message


def basic_on_b(pair, team: str | None = None) -> None:
    Connection.objects.filter(pk=pair.b.connection.pk).update(mode=Mode.BASIC)
    if team is not None:
        GeneralSettings.objects.update(basic_team=team)


def test_basic_mode_creates_the_request_in_the_service_desk_team(pair):
    basic_on_b(pair)
    start(pair, "Basic")
    [copy] = pair.b.xurrent.all_requests()
    assert copy["team"]["name"] == BASIC_TEAM == "Service Desk"
    assert (copy["subject"], copy["category"], copy["impact"]) == ("Basic", "incident", "low")


@pytest.mark.parametrize("team", ["Network", "2"])
def test_basic_mode_uses_the_team_the_xurrent_settings_name(pair, team):
    basic_on_b(pair, team)
    start(pair, "Basic elsewhere")
    [copy] = pair.b.xurrent.all_requests()
    assert copy["team"] == {"id": 2, "name": "Network"}


def test_basic_mode_with_a_team_the_account_lacks_says_where_to_set_it(pair):
    basic_on_b(pair, "Helpdesk")
    start(pair, "Basic nowhere")
    assert pair.b.xurrent.all_requests() == []
    error = SyncError.objects.get(connection=pair.b.connection)
    assert error.blocking and error.kind == ErrorKind.SCRIPT
    assert error.message.startswith("No team named 'Helpdesk' in this Xurrent account.")
    assert "Team for new requests" in error.message
    assert "incoming script" not in error.message  # Basic mode has none to edit


def test_basic_rules_set_a_numeric_team_as_an_id_and_a_name_as_text():
    assert "entity.team = 12\n" in basic_incoming("12")
    assert "entity.team = \"Ops 'B'\"\n" in basic_incoming("Ops 'B'")
    assert "the team “Network”" in basic_fields("Network")[0][1]


# --- the setting -------------------------------------------------------------------------------


def xurrent_form(node, **changes) -> XurrentAccountForm:
    data = {
        "xurrent_api_url": node.xurrent_api_url,
        "xurrent_account": node.xurrent_account,
        "xurrent_webhook_key": node.xurrent_webhook_key,
        **changes,
    }
    return XurrentAccountForm(data, instance=node)


def test_the_basic_team_is_set_in_the_xurrent_settings(node):
    form = xurrent_form(node, basic_team="  Network   Operations ")
    assert form.is_valid(), form.errors
    form.save()
    assert GeneralSettings.objects.get().basic_team == "Network Operations"


def test_a_blank_basic_team_is_refused_and_one_left_out_is_kept(node):
    form = xurrent_form(node, basic_team="  ")
    assert not form.is_valid()
    assert "Xurrent needs a team for each new request" in str(form.errors)
    form = xurrent_form(node)
    assert form.is_valid(), form.errors
    form.save()
    assert GeneralSettings.objects.get().basic_team == "Service Desk"


def test_the_basic_rules_page_and_the_xurrent_page_name_the_nodes_team(admin_client, node):
    GeneralSettings.objects.update(basic_team="Network")
    connection = Connection.objects.create(
        name="Acme basic",
        mode=Mode.BASIC,
        role="source",
        local_short_name="acme",
        remote_short_name="globex",
    )
    rules_page = admin_client.get(f"/connections/{connection.pk}/rules/").content.decode()
    assert "in the team “Network” of this Xurrent account" in rules_page
    assert "entity.team = &#x27;Network&#x27;" in rules_page
    xurrent_page = admin_client.get("/settings/xurrent/").content.decode()
    assert '<dd id="basic-team">Network</dd>' in xurrent_page
    assert 'name="basic_team"' in xurrent_page


def test_the_scripts_description_says_references_take_names():
    from sync.vocabulary import sandbox_description

    lines = {line.split(" (")[0]: line for line in sandbox_description().splitlines()}
    assert "sets it by name" in lines["- team"]
    assert "name or email address" in lines["- assignee"]
    assert "copy replica.reporter.name" in lines["- reporter"]
    assert "by id (a number) only" in lines["- service"]
