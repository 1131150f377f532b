"""The initiate wizard, walked with the test client; destinations are real HTTP servers."""

import json
import re
import socket
from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.test import Client

from connections.models import Connection, ConnectionEvent, EventKind
from invitations import code as invitation_code
from invitations.models import Invitation, hash_token
from invitations.services.accepting import AcceptError, accept_invitation
from nodes import client as node_client
from nodes.models import GeneralSettings
from tests.http_servers import answering, discovery_answer, refusing, silent

URL = "/connections/initiate/"
PREFIX = "initiate_connection_wizard"
REAL_GETADDRINFO = socket.getaddrinfo


def post_step(client, step: str, **fields):
    data = {f"{PREFIX}-current_step": step}
    data.update({f"{step}-{name}": value for name, value in fields.items()})
    return client.post(URL, data)


def back(client, from_step: str, to_step: str, **fields):
    data = {f"{PREFIX}-current_step": from_step, "wizard_goto_step": to_step}
    data.update({f"{from_step}-{name}": value for name, value in fields.items()})
    return client.post(URL, data)


def current_step(response) -> str:
    return response.context["wizard"]["steps"].current


def field_errors(response, field: str) -> str:
    return " ".join(response.context["form"].errors.get(field, []))


def shown_code(response) -> str:
    match = re.search(r'id="invitation-code"[^>]*>([^<]+)<', response.content.decode())
    assert match, "no invitation code on the page"
    return match.group(1).strip()


def finish(client, **details):
    """The last step: fill the details; the answer is the code page (shown once, in the
    answer to the POST: the code is kept nowhere to be shown later)."""
    fields = {
        "local_short_name": "acme",
        "remote_short_name": "globex",
        "name": "Acme to Globex",
        "description": "",
    }
    fields.update(details)
    response = post_step(client, "details", **fields)
    assert response.status_code == 200
    assert 'id="invitation-code"' in response.content.decode(), response.context.get("form")
    return response


@pytest.fixture
def private_allowed(settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def wizard(admin_client, node):
    """An admin at the start of the wizard."""
    response = admin_client.get(URL)
    assert response.status_code == 200
    return admin_client


@pytest.fixture
def globex(private_allowed):
    """A healthy public destination node offering both modes."""
    with answering(200, discovery_answer(short_name="globex")) as server:
        yield server


# --- access -------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_a_user_without_the_add_permission_gets_403_and_nothing_is_created(viewer_client):
    assert viewer_client.get(URL).status_code == 403
    response = post_step(viewer_client, "destination", no_url="on")
    assert response.status_code == 403
    assert b"not allowed" in response.content
    assert not Connection.objects.exists()


def test_a_user_with_only_the_add_permission_may_initiate(client, node):
    user = get_user_model().objects.create_user("maker", "", "pw-maker-123456")
    user.user_permissions.add(Permission.objects.get(codename="add_connection"))
    client.force_login(user)
    assert client.get(URL).status_code == 200


# --- destination step ---------------------------------------------------------------------


def test_the_wizard_opens_on_the_destination_step(wizard):
    response = wizard.get(URL)
    page = response.content.decode()
    assert "Step 1 of 4" in page
    assert 'name="destination-destination_url"' in page
    assert 'name="destination-no_url"' in page
    assert f'name="{PREFIX}-current_step"' in page
    assert "Destination instance URL" in page
    assert "wizard_goto_step" not in page  # no Back on the first step
    assert 'href="/connections/"' in page  # Cancel


def test_the_destination_step_needs_a_url_or_i_dont_have_a_url(wizard):
    response = post_step(wizard, "destination", destination_url="")
    assert current_step(response) == "destination"
    assert "I don't have a URL" in field_errors(response, "destination_url")


def test_the_destination_step_refuses_a_url_and_the_checkbox_together(wizard):
    response = post_step(
        wizard, "destination", destination_url="https://globex.example", no_url="on"
    )
    assert current_step(response) == "destination"
    assert "not both" in field_errors(response, "destination_url")


def test_the_destination_step_refuses_a_url_that_is_not_http(wizard):
    response = post_step(wizard, "destination", destination_url="ftp://globex.example")
    assert current_step(response) == "destination"
    assert "http:// or https://" in field_errors(response, "destination_url")
    # What was typed is still there to correct.
    assert 'value="ftp://globex.example"' in response.content.decode()


def assert_stays_on_destination(response, *fragments: str):
    assert response.status_code == 200
    assert current_step(response) == "destination"
    errors = field_errors(response, "destination_url")
    for fragment in fragments:
        assert fragment in errors
    assert "I don't have a URL" in errors
    assert "Step 1 of 4" in response.content.decode()
    assert not Connection.objects.exists()


def test_a_destination_that_refuses_the_connection_stays_on_the_first_step(wizard, private_allowed):
    with refusing() as server:
        response = post_step(wizard, "destination", destination_url=server.url)
    assert_stays_on_destination(response, "Could not connect")


def test_a_destination_that_hangs_past_the_timeout_stays_on_the_first_step(
    wizard, private_allowed, monkeypatch
):
    monkeypatch.setattr(node_client, "READ_TIMEOUT", 0.3)
    with silent() as server:
        response = post_step(wizard, "destination", destination_url=server.url)
    assert_stays_on_destination(response, "did not answer in time")


def test_a_destination_answering_500_stays_on_the_first_step(wizard, private_allowed):
    with answering(500, b"Internal Server Error", "text/plain") as server:
        response = post_step(wizard, "destination", destination_url=server.url)
    assert_stays_on_destination(response, "server error (HTTP 500)")


def test_a_destination_answering_html_stays_on_the_first_step(wizard, private_allowed):
    with answering(200, b"<html><body>It works!</body></html>", "text/html") as server:
        response = post_step(wizard, "destination", destination_url=server.url)
    assert_stays_on_destination(response, "not like an Exalate node")


def test_a_url_with_a_page_path_suggests_the_base_url(wizard, private_allowed):
    with answering(404, b"<html>Not Found</html>", "text/html") as server:
        response = post_step(wizard, "destination", destination_url=f"{server.url}/connections/")
    assert_stays_on_destination(
        response, "not like an Exalate node", f"base URL, for example {server.url}."
    )


def test_a_base_url_that_is_not_a_node_gets_no_base_url_hint(wizard, private_allowed):
    with answering(404, b"<html>Not Found</html>", "text/html") as server:
        response = post_step(wizard, "destination", destination_url=server.url)
    assert_stays_on_destination(response, "not like an Exalate node")
    assert "base URL, for example" not in field_errors(response, "destination_url")


def test_a_destination_answering_foreign_json_stays_on_the_first_step(wizard, private_allowed):
    with answering(200, {"name": "some other API", "version": 3}) as server:
        response = post_step(wizard, "destination", destination_url=server.url)
    assert_stays_on_destination(response, "not an Exalate node")


def test_a_destination_that_is_not_public_stays_on_the_first_step(wizard, private_allowed):
    with answering(200, discovery_answer(public=False)) as server:
        response = post_step(wizard, "destination", destination_url=server.url)
    assert_stays_on_destination(response, "not public")


def test_a_destination_with_no_mode_in_common_stays_on_the_first_step(wizard, private_allowed):
    with answering(200, discovery_answer(modes=[])) as server:
        response = post_step(wizard, "destination", destination_url=server.url)
    assert current_step(response) == "destination"
    assert "no configuration mode in common" in field_errors(response, "destination_url")


def test_a_private_address_is_refused_by_the_guard_without_calling_it(wizard, settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    with answering(200, discovery_answer()) as server:
        response = post_step(wizard, "destination", destination_url=server.url)
    assert_stays_on_destination(response, "private or local network address")
    assert server.requests == []


@pytest.mark.parametrize("url", ["http://10.0.0.8", "http://[::1]:8000", "http://169.254.169.254"])
def test_private_address_literals_are_refused_by_the_guard(wizard, settings, url):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    response = post_step(wizard, "destination", destination_url=url)
    assert_stays_on_destination(response, "private or local network address")


def test_a_host_name_resolving_to_a_private_address_is_refused(wizard, settings, monkeypatch):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "intranet.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.10.5", port))]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    response = post_step(wizard, "destination", destination_url="https://intranet.example")
    assert_stays_on_destination(response, "intranet.example is a private or local network")


def test_this_nodes_own_url_makes_a_local_connection_without_calling_itself(
    wizard, node, private_allowed
):
    with answering(200, discovery_answer()) as server:
        node.node_url = server.url + "/"
        node.save()
        response = post_step(wizard, "destination", destination_url=server.url.upper())
        assert current_step(response) == "mode"
        assert "local connection" in response.content.decode()
        post_step(wizard, "mode", mode="script")
        response = finish(wizard, remote_short_name="acme2", name="Loop")
    assert server.requests == []
    connection = Connection.objects.get()
    assert connection.remote_url == server.url
    assert str(connection.remote_uid or "") in ("", str(node.uid))
    assert str(connection.invitations.get().destination_uid) == str(node.uid)


def test_an_alias_of_this_node_is_recognised_by_its_uid(wizard, node, private_allowed):
    with answering(200, discovery_answer(uid=str(node.uid))) as alias:
        response = post_step(wizard, "destination", destination_url=alias.url)
    assert current_step(response) == "mode"
    assert "local connection" in response.content.decode()


# --- mode step ----------------------------------------------------------------------------


def test_the_mode_step_offers_both_modes_and_says_the_mode_is_final(wizard, globex):
    response = post_step(wizard, "destination", destination_url=globex.url)
    page = response.content.decode()
    assert current_step(response) == "mode"
    assert "Step 2 of 4" in page
    assert 'value="basic"' in page and 'value="script"' in page
    assert "The mode is final" in page
    assert globex.url in page
    assert globex.requests == ["/api/v1/instance/"]


def test_discovery_runs_once_for_the_whole_walk(wizard, globex):
    post_step(wizard, "destination", destination_url=globex.url)
    post_step(wizard, "mode", mode="script")
    finish(wizard)
    assert globex.requests == ["/api/v1/instance/"]


def test_discovery_runs_once_per_url_going_back_and_forth(wizard, private_allowed, monkeypatch):
    from invitations.views import initiate

    asked = []
    real = initiate.discover_destination

    def counting(url, *, node):
        asked.append(url)
        return real(url, node=node)

    monkeypatch.setattr(initiate, "discover_destination", counting)
    with answering(200, discovery_answer()) as one, answering(200, discovery_answer()) as two:
        post_step(wizard, "destination", destination_url=one.url)
        post_step(wizard, "mode", mode="script")
        back(wizard, "details", "mode", name="")
        back(wizard, "mode", "destination", mode="script")
        post_step(wizard, "destination", destination_url=two.url)
        back(wizard, "mode", "destination", mode="script")
        # The same URL typed another way is the same destination.
        post_step(wizard, "destination", destination_url=one.url.upper() + "/")
        post_step(wizard, "mode", mode="script")
        finish(wizard)
    assert asked == [one.url, two.url]
    assert one.requests == two.requests == ["/api/v1/instance/"]
    assert Connection.objects.get().remote_url == one.url


def test_a_failed_discovery_is_asked_again_when_submitted_again(wizard, private_allowed):
    with answering(500, b"down", "text/plain") as server:
        post_step(wizard, "destination", destination_url=server.url)
        response = post_step(wizard, "destination", destination_url=server.url)
    assert current_step(response) == "destination"
    assert server.requests == ["/api/v1/instance/"] * 2


def test_a_destination_offering_only_basic_leaves_only_basic(wizard, private_allowed):
    with answering(200, discovery_answer(modes=["basic"])) as server:
        response = post_step(wizard, "destination", destination_url=server.url)
    page = response.content.decode()
    assert 'value="basic"' in page and 'value="script"' not in page
    assert f"Script mode is not offered because {server.url} cannot take part" in page
    response = post_step(wizard, "mode", mode="script")
    assert current_step(response) == "mode"
    assert "not offered" in field_errors(response, "mode")


def test_without_a_url_this_nodes_modes_are_offered(wizard):
    response = post_step(wizard, "destination", no_url="on")
    page = response.content.decode()
    assert current_step(response) == "mode"
    assert 'value="basic"' in page and 'value="script"' in page
    assert "No URL" in page


def test_the_mode_step_needs_a_choice(wizard):
    post_step(wizard, "destination", no_url="on")
    response = post_step(wizard, "mode")
    assert current_step(response) == "mode"
    assert field_errors(response, "mode") == "Choose a configuration mode."


@pytest.mark.parametrize(
    ("license", "ends", "why"),
    [
        ("free", None, "this node has a Free licence"),
        ("evaluation", date.today() - timedelta(days=1), "evaluation period ended"),
    ],
)
def test_a_free_licence_is_offered_basic_only_with_the_reason(wizard, node, license, ends, why):
    node.license, node.evaluation_ends_on = license, ends
    node.save()
    first = wizard.get(URL).content.decode()
    assert why in first  # said on entry already
    response = post_step(wizard, "destination", no_url="on")
    page = response.content.decode()
    assert 'value="basic"' in page and 'value="script"' not in page
    assert why in page and "Script needs an Evaluation or a Paid licence" in page
    assert current_step(post_step(wizard, "mode", mode="script")) == "mode"


# --- details step -------------------------------------------------------------------------


def test_the_details_step_is_prefilled_from_the_settings_and_the_destination(wizard, node, globex):
    node.short_name = "acme"
    node.save()
    post_step(wizard, "destination", destination_url=globex.url)
    response = post_step(wizard, "mode", mode="script")
    form = response.context["form"]
    assert current_step(response) == "details"
    assert "Step 3 of 4" in response.content.decode()
    assert form["local_short_name"].value() == "acme"
    assert form["remote_short_name"].value() == "globex"
    assert form["name"].value() == "acme to globex"
    assert "Script" in response.content.decode()  # the chosen mode, in the summary


def test_the_details_step_shows_each_error_on_its_field_and_keeps_the_input(wizard):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    response = post_step(
        wizard,
        "details",
        local_short_name="acme/eu",
        remote_short_name="",
        name="n" * 101,
        description="d" * 1001,
    )
    assert current_step(response) == "details"
    assert "Use only letters, digits" in field_errors(response, "local_short_name")
    assert "Enter a short name" in field_errors(response, "remote_short_name")
    assert "at most 100 characters" in field_errors(response, "name")
    assert "at most 1000 characters" in field_errors(response, "description")
    assert 'value="acme/eu"' in response.content.decode()
    assert not Connection.objects.exists()


def test_a_duplicate_name_in_another_case_is_refused_on_the_details_step(wizard):
    Connection.objects.create(
        name="Acme to Globex",
        mode="basic",
        role="source",
        local_short_name="a",
        remote_short_name="b",
    )
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    response = post_step(
        wizard,
        "details",
        local_short_name="acme",
        remote_short_name="globex",
        name="ACME TO GLOBEX",
    )
    assert current_step(response) == "details"
    assert "already exists" in field_errors(response, "name")
    assert Connection.objects.count() == 1


# --- back and cancel ----------------------------------------------------------------------


def test_back_does_not_validate_and_keeps_what_was_chosen(wizard, globex):
    post_step(wizard, "destination", destination_url=globex.url)
    post_step(wizard, "mode", mode="script")
    response = back(wizard, "details", "mode", local_short_name="", name="")
    assert current_step(response) == "mode"
    assert not response.context["form"].errors
    assert "Step 2 of 4" in response.content.decode()
    assert response.context["form"]["mode"].value() == "script"
    response = back(wizard, "mode", "destination", mode="script")
    assert current_step(response) == "destination"
    assert response.context["form"]["destination_url"].value() == globex.url
    assert globex.requests == ["/api/v1/instance/"]  # going back asked nobody


def test_details_typed_before_going_back_are_shown_again(wizard):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    typed = {"local_short_name": "acme", "remote_short_name": "hidden", "name": "Private one"}
    back(wizard, "details", "mode", **typed)
    response = post_step(wizard, "mode", mode="basic")
    assert response.context["form"]["name"].value() == "Private one"
    assert not response.context["form"].errors


def test_changing_the_destination_drops_a_mode_it_does_not_offer(wizard, private_allowed):
    with answering(200, discovery_answer()) as both:
        post_step(wizard, "destination", destination_url=both.url)
    back(wizard, "mode", "destination", mode="script")
    with answering(200, discovery_answer(modes=["basic"])) as basic_only:
        response = post_step(wizard, "destination", destination_url=basic_only.url)
    assert current_step(response) == "mode"
    # The mode chosen for the first destination is not carried over: the step says so.
    assert field_errors(response, "mode") == (
        "Script mode is not offered for this connection: choose one of the modes listed."
    )
    page = response.content.decode()
    assert 'value="script"' not in page
    assert f"Script mode is not offered because {basic_only.url} cannot take part" in page
    assert current_step(post_step(wizard, "mode", mode="basic")) == "details"


def test_a_mode_still_offered_after_changing_the_destination_stays_chosen(wizard, private_allowed):
    with answering(200, discovery_answer()) as first:
        post_step(wizard, "destination", destination_url=first.url)
    back(wizard, "mode", "destination", mode="script")
    with answering(200, discovery_answer()) as second:
        response = post_step(wizard, "destination", destination_url=second.url)
    assert not response.context["form"].errors
    assert response.context["form"]["mode"].value() == "script"


def test_details_kept_before_changing_the_destination_are_not_taken_for_another_tab(
    wizard, private_allowed
):
    with answering(200, discovery_answer(short_name="first")) as first:
        post_step(wizard, "destination", destination_url=first.url)
        post_step(wizard, "mode", mode="basic")
        typed = {"local_short_name": "acme", "remote_short_name": "far", "name": "Typed"}
        back(wizard, "details", "mode", destination_check=first.url, **typed)
    back(wizard, "mode", "destination", mode="basic")
    with answering(200, discovery_answer(short_name="second")) as second:
        post_step(wizard, "destination", destination_url=second.url)
        response = post_step(wizard, "mode", mode="basic")
        assert current_step(response) == "details"
        assert not response.context["form"].errors
        assert response.context["form"]["name"].value() == "Typed"
        assert f'value="{second.url}"' in response.content.decode()  # the hidden check
        finish(wizard, destination_check=second.url, **typed)
    assert Connection.objects.get().remote_url == second.url


def test_the_wizard_has_a_cancel_link_to_the_connections_list(wizard):
    response = post_step(wizard, "destination", no_url="on")
    assert re.search(
        r'<a class="button" href="/connections/" id="wizard-cancel">Cancel</a>',
        response.content.decode(),
    )


def test_a_page_left_open_in_another_tab_cannot_finish_for_another_destination(
    wizard, private_allowed
):
    with answering(200, discovery_answer(short_name="first")) as first:
        post_step(wizard, "destination", destination_url=first.url)
        post_step(wizard, "mode", mode="basic")
        stale_check = first.url
    # Another tab starts over (a GET resets the shared wizard) with another destination.
    wizard.get(URL)
    with answering(200, discovery_answer(short_name="second")) as second:
        post_step(wizard, "destination", destination_url=second.url)
        post_step(wizard, "mode", mode="basic")
        response = post_step(
            wizard,
            "details",
            local_short_name="acme",
            remote_short_name="first",
            name="Meant for first",
            destination_check=stale_check,
        )
        assert current_step(response) == "details"
        assert "another tab" in response.content.decode()
        assert not Connection.objects.exists()
        response = post_step(
            wizard,
            "details",
            local_short_name="acme",
            remote_short_name="second",
            name="Now for second",
            destination_check=second.url,
        )
    assert 'id="invitation-code"' in response.content.decode()
    assert Connection.objects.get().remote_url == second.url


def test_finishing_without_a_checked_destination_goes_back_to_the_first_step(wizard):
    # A crafted post of the later steps alone: nothing was discovered.
    post_step(wizard, "mode", mode="basic")
    response = post_step(
        wizard, "details", local_short_name="a", remote_short_name="b", name="Sneaky"
    )
    assert current_step(response) == "destination"
    assert not Connection.objects.exists()


# --- preconditions ------------------------------------------------------------------------


def test_a_node_that_is_not_public_explains_and_shows_no_form(wizard, node):
    node.public = False
    node.save()
    response = wizard.get(URL)
    page = response.content.decode()
    assert response.status_code == 200
    assert "This instance is not public" in page
    assert "accept their invitation" in page
    assert '<form method="post" class="card wizard"' not in page
    assert "destination-destination_url" not in page
    assert 'id="general-settings-link"' in page  # staff get the link


def test_the_general_settings_link_is_for_staff_only(client, node):
    node.public = False
    node.save()
    user = get_user_model().objects.create_user("maker", "", "pw-maker-123456")
    user.user_permissions.add(Permission.objects.get(codename="add_connection"))
    client.force_login(user)
    page = client.get(URL).content.decode()
    assert "This instance is not public" in page
    assert 'id="general-settings-link"' not in page


def test_a_node_made_private_during_the_walk_creates_nothing(wizard, node):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="script")
    GeneralSettings.objects.filter(pk=node.pk).update(public=False)
    response = post_step(
        wizard, "details", local_short_name="acme", remote_short_name="b", name="Late"
    )
    assert "This instance is not public" in response.content.decode()
    assert not Connection.objects.exists()


def test_a_licence_turned_free_during_the_walk_sends_back_to_the_mode_step(wizard, node):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="script")
    GeneralSettings.objects.filter(pk=node.pk).update(license="free")
    response = post_step(
        wizard, "details", local_short_name="acme", remote_short_name="b", name="Late"
    )
    assert current_step(response) == "mode"
    assert "Free licence" in response.content.decode()
    assert not Connection.objects.exists()
    # What was typed on the details step is still there after choosing Basic.
    response = post_step(wizard, "mode", mode="basic")
    assert response.context["form"]["name"].value() == "Late"


# --- finishing and the code page ----------------------------------------------------------


def test_finishing_creates_the_pending_connection_its_invitation_and_events(
    wizard, admin_user, node, globex
):
    post_step(wizard, "destination", destination_url=globex.url)
    post_step(wizard, "mode", mode="script")
    response = finish(wizard, description="Sync P1 incidents")
    connection = Connection.objects.get()
    # Shown in the answer to the last step; a reload goes to the code page's own address.
    assert f'data-page-url="/connections/{connection.id}/invitation/"' in response.content.decode()
    assert connection.status == "pending"
    assert connection.role == "source"
    assert connection.mode == "script"
    assert connection.name == "Acme to Globex"
    assert connection.description == "Sync P1 incidents"
    assert connection.remote_url == globex.url
    assert connection.remote_platform == "xurrent"
    assert connection.created_by == admin_user
    invitation = connection.invitations.get()
    assert invitation.state == "valid"
    kinds = set(
        ConnectionEvent.objects.filter(connection=connection).values_list("kind", flat=True)
    )
    assert {EventKind.CREATED, EventKind.INVITATION_ISSUED} <= kinds


def test_the_code_page_shows_a_code_that_carries_the_connection(wizard, node, globex, settings):
    settings.EXALATE_INVITATION_TTL_HOURS = 2
    post_step(wizard, "destination", destination_url=globex.url)
    post_step(wizard, "mode", mode="script")
    response = finish(wizard)
    page = response.content.decode()
    connection = Connection.objects.get()
    invitation = connection.invitations.get()
    assert "Step 4 of 4" in page
    assert 'id="copy-invitation-code"' in page
    assert f'href="{globex.url}/connections/accept/"' in page
    assert "Go to remote" in page and ">Done<" in page
    assert response["Cache-Control"].startswith("max-age=0")
    decoded = invitation_code.decode(shown_code(response))
    uid = decoded.destination_uid
    assert decoded.connection_id == str(connection.id)
    assert decoded.mode == "script"
    assert decoded.source_uid == str(node.uid)
    assert decoded.source_url == node.base_url
    assert decoded.destination_short_name == "globex"
    assert uid is not None and str(invitation.destination_uid) == uid
    assert hash_token(decoded.token) == invitation.token_hash
    assert abs((decoded.expires_at - invitation.expires_at).total_seconds()) < 1
    assert invitation.expires_at.strftime("%Y-%m-%d %H:%M") in page
    assert Invitation.objects.get().shown_at is not None


def sessions_holding(text: str) -> list[str]:
    """Keys of the stored sessions whose data, decoded, contains `text`."""
    return [
        session.session_key
        for session in Session.objects.all()
        if text in json.dumps(session.get_decoded())
    ]


def test_the_code_is_kept_in_no_session_and_shown_once(wizard):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    page = finish(wizard)
    code = shown_code(page)
    assert page.content.decode().count(code) == 1
    assert Session.objects.exists()  # the admin's login session, at least
    assert sessions_holding(code) == []
    assert code not in json.dumps(dict(wizard.session.items()))
    connection = Connection.objects.get()
    regenerated = wizard.post(f"/connections/{connection.id}/invitation/regenerate/")
    new_code = shown_code(regenerated)
    assert regenerated.content.decode().count(new_code) == 1
    assert sessions_holding(new_code) == []


def test_codes_that_older_versions_kept_in_sessions_are_taken_out(db):
    from importlib import import_module

    from django.apps import apps
    from django.conf import settings

    migration = import_module("invitations.migrations.0004_forget_codes_kept_in_sessions")
    store = import_module(settings.SESSION_ENGINE).SessionStore
    old = store()
    old[migration.OLD_SESSION_KEY] = {"c0ffee": {"invitation": 1, "code": "left-behind.code"}}
    old["_auth_user_id"] = "1"
    old.save()
    untouched = store()
    untouched["other"] = "kept"
    untouched.save()
    migration.forget_codes_kept_in_sessions(apps, None)
    assert sessions_holding("left-behind.code") == []
    assert dict(store(session_key=old.session_key).items()) == {"_auth_user_id": "1"}
    assert store(session_key=untouched.session_key)["other"] == "kept"


def test_the_code_page_has_no_go_to_remote_link_without_a_url(wizard):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    response = finish(wizard)
    assert "Go to remote" not in response.content.decode()
    assert invitation_code.decode(shown_code(response)).destination_uid is None


def test_the_code_is_shown_once_and_a_reload_offers_regenerate(wizard):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    first = finish(wizard)
    code = shown_code(first)
    code_url = f"/connections/{Connection.objects.get().id}/invitation/"
    reload = wizard.get(code_url).content.decode()
    assert 'id="invitation-code"' not in reload
    assert code not in reload
    assert "can no longer be shown" in reload
    assert "Regenerate invitation" in reload


def test_regenerate_revokes_the_old_code_and_shows_a_new_one_once(wizard):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    old = invitation_code.decode(shown_code(finish(wizard)))
    connection = Connection.objects.get()
    code_url = f"/connections/{connection.id}/invitation/"
    response = wizard.post(f"/connections/{connection.id}/invitation/regenerate/")
    assert f'data-page-url="{code_url}"' in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0")
    new = invitation_code.decode(shown_code(response))
    assert new.token != old.token
    assert Invitation.objects.get(token_hash=hash_token(old.token)).state == "revoked"
    assert Invitation.objects.get(token_hash=hash_token(new.token)).state == "valid"
    assert "can no longer be shown" in wizard.get(code_url).content.decode()
    assert connection.events.filter(kind=EventKind.INVITATION_REVOKED).exists()


def test_regenerate_is_refused_for_a_connection_that_is_no_longer_pending(wizard):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    finish(wizard)
    connection = Connection.objects.get()
    connection.activate()
    response = wizard.post(f"/connections/{connection.id}/invitation/regenerate/", follow=True)
    assert "no new code was made" in response.content.decode()
    assert connection.invitations.count() == 1
    page = wizard.get(f"/connections/{connection.id}/invitation/").content.decode()
    assert "already accepted" in page
    assert "Regenerate invitation" not in page


def test_regenerate_refused_for_a_connection_in_error_says_why(wizard):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    finish(wizard)
    connection = Connection.objects.get()
    connection.mark_error("deleted on the remote side")
    response = wizard.post(f"/connections/{connection.id}/invitation/regenerate/", follow=True)
    assert "this one is in error (deleted on the remote side)" in response.content.decode()
    assert connection.invitations.count() == 1


def test_regenerate_of_a_connection_deleted_meanwhile_says_so_and_makes_nothing(wizard):
    from connections.services import actions
    from invitations.services import issuing

    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    finish(wizard)
    stale = Connection.objects.get()
    Connection.objects.filter(pk=stale.pk).delete()
    with pytest.raises(actions.ConnectionGone, match="deleted meanwhile"):
        issuing.regenerate_invitation(stale)
    assert not Invitation.objects.exists()


def test_regenerate_needs_a_post_and_the_permission(wizard, viewer):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    finish(wizard)
    connection = Connection.objects.get()
    path = f"/connections/{connection.id}/invitation/regenerate/"
    assert wizard.get(path).status_code == 405
    viewer_client = Client()
    viewer_client.force_login(viewer)
    assert viewer_client.post(path).status_code == 403
    assert viewer_client.get(f"/connections/{connection.id}/invitation/").status_code == 403
    assert connection.invitations.count() == 1


def test_the_connection_page_shows_the_pending_invitation_and_regenerate(wizard):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    finish(wizard)
    connection = Connection.objects.get()
    invitation = connection.invitations.get()
    page = wizard.get(f"/connections/{connection.id}/").content.decode()
    assert 'id="invitation-panel"' in page
    assert invitation.expires_at.strftime("%Y-%m-%d %H:%M") in page
    assert f'action="/connections/{connection.id}/invitation/regenerate/"' in page
    assert 'data-status="pending"' in page


def test_a_name_taken_just_before_the_insert_shows_the_details_step_with_the_error(
    wizard, monkeypatch
):
    from invitations.services import initiating

    real = initiating.initiate_connection

    def racing(**fields):
        # Another admin takes the name after the wizard checked it, before the insert.
        Connection.objects.create(
            name=fields["name"].upper(),
            mode="basic",
            role="source",
            local_short_name="x",
            remote_short_name="y",
        )
        return real(**fields)

    monkeypatch.setattr(initiating, "initiate_connection", racing)
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    response = post_step(
        wizard, "details", local_short_name="acme", remote_short_name="far", name="Raced"
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Step 3 of 4" in page
    assert field_errors(response, "name") == initiating.NAME_TAKEN
    assert 'value="Raced"' in page and 'value="far"' in page
    assert list(Connection.objects.values_list("name", flat=True)) == ["RACED"]
    assert not Invitation.objects.exists()

    # The destination and mode chosen before are still there: another name finishes it.
    monkeypatch.setattr(initiating, "initiate_connection", real)
    response = post_step(
        wizard, "details", local_short_name="acme", remote_short_name="far", name="Raced 2"
    )
    assert response.status_code == 200 and "invitation code" in response.content.decode().lower()
    made = Connection.objects.get(name="Raced 2")
    assert (made.mode, made.remote_short_name) == ("basic", "far")
    assert made.invitations.count() == 1


def test_the_wizard_storage_is_cleared_after_finishing(wizard):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    finish(wizard)
    # Replaying the last step cannot make a second connection from leftover data.
    response = post_step(
        wizard, "details", local_short_name="acme", remote_short_name="b", name="Replay"
    )
    assert current_step(response) == "destination"
    assert Connection.objects.count() == 1


# --- against a real second node -----------------------------------------------------------


@pytest.mark.e2e
def test_the_whole_walk_against_a_live_second_node(wizard, node, live_nodes, settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True  # the live node listens on 127.0.0.1
    b = live_nodes("b")
    b_uid = b.shell(
        "from nodes.models import GeneralSettings as G; print(G.load().uid)"
    ).splitlines()[-1]

    response = post_step(wizard, "destination", destination_url=b.url + "/")
    assert current_step(response) == "mode"
    response = post_step(wizard, "mode", mode="script")
    remote = response.context["form"]["remote_short_name"].value()
    assert remote == "xurrent"  # what the live node calls itself
    response = post_step(
        wizard,
        "details",
        local_short_name="acme",
        remote_short_name=remote,
        name="Live walk",
        description="",
    )
    code = invitation_code.decode(shown_code(response))
    assert code.destination_uid == b_uid
    assert code.mode == "script"
    listing = wizard.get("/connections/").content.decode()
    connection = Connection.objects.get(name="Live walk")
    assert f'data-connection-id="{connection.id}" data-status="pending"' in listing
    assert connection.remote_url == b.url


def test_revoke_on_the_connection_page_makes_the_code_useless_and_keeps_it_pending(wizard):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    code = shown_code(finish(wizard))
    connection = Connection.objects.get()
    page = wizard.get(f"/connections/{connection.id}/").content.decode()
    assert f'action="/connections/{connection.id}/invitation/revoke/"' in page
    response = wizard.post(f"/connections/{connection.id}/invitation/revoke/", follow=True)
    html = response.content.decode()
    assert "The invitation code is revoked: it can no longer be accepted." in html
    assert 'id="revoke-invitation"' not in html
    assert "Regenerate invitation" in html
    connection.refresh_from_db()
    assert connection.status == "pending"
    assert connection.events.filter(kind=EventKind.INVITATION_REVOKED).exists()
    with pytest.raises(AcceptError) as failure:
        accept_invitation(code)
    assert failure.value.code == "invitation_revoked"
    again = wizard.post(f"/connections/{connection.id}/invitation/revoke/", follow=True)
    assert "nothing changed" in again.content.decode()


def test_revoke_is_refused_for_an_accepted_connection_and_needs_the_permission(wizard, viewer):
    post_step(wizard, "destination", no_url="on")
    post_step(wizard, "mode", mode="basic")
    finish(wizard)
    connection = Connection.objects.get()
    path = f"/connections/{connection.id}/invitation/revoke/"
    assert wizard.get(path).status_code == 405
    viewer_client = Client()
    viewer_client.force_login(viewer)
    assert viewer_client.post(path).status_code == 403
    connection.activate()
    response = wizard.post(path, follow=True)
    assert "so nothing was revoked" in response.content.decode()
    assert connection.invitations.get().state == "valid"
