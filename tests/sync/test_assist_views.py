"""AI Assist on the rules page (the form post without JavaScript, the JSON answer for
fetch), saving a draft as a version, and the AI Assist settings page."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from nodes.models import GeneralSettings
from sync import DEFAULT_INCOMING, DEFAULT_OUTGOING, SAMPLE_REPLICA, SAMPLE_REQUEST
from sync.models import SyncRuleVersion
from tests.sync.conftest import AI_KEY, make_connection
from tests.sync.fake_model import draft
from tests.sync.test_views import textarea_text, url

GOOD_OUT = "replica.summary = entity.summary\nreplica.status = entity.status\n"
BROKEN_OUT = "replica.summary = (entity.summary\n"
WORDS = "Send only the summary and the status."


pytestmark = pytest.mark.usefixtures("fresh_allowances")


@pytest.fixture
def connection(db):
    """A bare script connection, as on the rules page's tests (not the Sync tab's pair)."""
    return make_connection("script")


def assist_data(**overrides):
    data = {
        "outgoing": DEFAULT_OUTGOING,
        "incoming": DEFAULT_INCOMING,
        "note": "",
        "based_on": "0",
        "sample_request": json.dumps(SAMPLE_REQUEST),
        "sample_replica": json.dumps(SAMPLE_REPLICA),
        "assist_words": WORDS,
        "assist_target": "outgoing",
    }
    data.update(overrides)
    return data


def post_assist(client, connection, *, as_json=False, **overrides):
    headers = {"Accept": "application/json"} if as_json else {}
    return client.post(url(connection, "rules_assist"), assist_data(**overrides), headers=headers)


# --- the panel -----------------------------------------------------------------------------


def test_without_an_endpoint_the_panel_says_how_to_set_one_up(admin_client, connection):
    page = admin_client.get(url(connection)).content.decode()
    assert 'id="assist-setup"' in page
    assert "EXALATE_AI_URL" in page and "EXALATE_ALLOW_PRIVATE_NETWORKS" in page
    assert reverse("assist:settings") in page  # a staff member gets the link
    assert 'id="assist-draft"' not in page


def test_a_set_up_panel_asks_what_to_sync(admin_client, connection, ai_node):
    page = admin_client.get(url(connection)).content.decode()
    assert 'id="assist-draft"' in page
    assert "fake-coder" in page
    assert AI_KEY not in page


def test_a_viewer_gets_no_panel_and_cannot_ask(viewer_client, connection, ai_node, fake_model):
    assert 'id="assist"' not in viewer_client.get(url(connection)).content.decode()
    assert post_assist(viewer_client, connection).status_code == 403
    assert fake_model.received == []


# --- asking --------------------------------------------------------------------------------


def test_without_javascript_the_page_comes_back_with_the_draft_in_the_box(
    editor_client, connection, ai_node, fake_model
):
    fake_model.answer(draft(outgoing=GOOD_OUT))
    response = post_assist(editor_client, connection)
    page = response.content.decode()
    assert response.status_code == 200
    assert textarea_text(response, "outgoing") == GOOD_OUT
    assert textarea_text(response, "incoming") == DEFAULT_INCOMING
    assert f'name="assist_prompt" value="{WORDS}"' in page
    assert 'id="assist-diff-outgoing"' in page
    assert "-replica.key = entity.key" in page
    assert "Test run of the draft" in page and 'id="replica"' in page
    assert 'id="not-saved"' not in page
    assert not SyncRuleVersion.objects.exists()


def test_with_javascript_the_answer_is_json_with_the_draft_and_its_panel(
    editor_client, connection, ai_node, fake_model
):
    fake_model.answer(draft(outgoing=BROKEN_OUT)).answer(draft(outgoing=GOOD_OUT))
    response = post_assist(editor_client, connection, as_json=True)
    body = response.json()
    assert response.status_code == 200
    assert body["ok"] and body["scripts"] == {"outgoing": GOOD_OUT}
    assert body["prompt"] == WORDS and body["problems"] == {}
    assert 'id="assist-sent-back"' in body["html"]  # the first draft was sent back
    assert "never closed" in body["html"]
    assert 'id="test-run-result"' in body["html"]


def test_a_draft_that_does_not_compile_comes_with_its_lines(
    editor_client, connection, ai_node, fake_model
):
    fake_model.answer(draft(outgoing=BROKEN_OUT)).answer(draft(outgoing=BROKEN_OUT))
    body = post_assist(editor_client, connection, as_json=True).json()
    assert body["ok"] and body["scripts"] == {"outgoing": BROKEN_OUT}
    assert body["problems"]["outgoing"][0]["line"] == 1
    assert 'data-target="id_outgoing"' in body["html"]
    assert 'data-compiles="false"' in body["html"]


@pytest.mark.parametrize(
    ("prepare", "status", "words"),
    [
        (lambda fake: fake.fail(401), 502, "refused the API key"),
        (lambda fake: fake.slow(3, draft(outgoing=GOOD_OUT)), 504, "did not answer within"),
        (lambda fake: fake.answer("no idea"), 502, "not with a draft"),
    ],
)
def test_a_failed_draft_is_told_and_changes_nothing(
    editor_client, connection, ai_node, fake_model, settings, prepare, status, words
):
    settings.EXALATE_AI_TIMEOUT = 1.0
    prepare(fake_model)
    response = post_assist(editor_client, connection, as_json=True)
    assert response.status_code == status
    assert not response.json()["ok"] and words in response.json()["message"]
    page = post_assist(editor_client, connection)
    assert 'id="assist-error"' in page.content.decode()
    assert textarea_text(page, "outgoing") == DEFAULT_OUTGOING


def test_empty_words_ask_nothing(editor_client, connection, ai_node, fake_model):
    response = post_assist(editor_client, connection, as_json=True, assist_words="  ")
    assert response.status_code == 400
    assert "Describe in a few words" in response.json()["message"]
    assert fake_model.received == []


def test_basic_mode_has_no_ai_assist(admin_client, basic_connection, ai_node, fake_model):
    response = post_assist(admin_client, basic_connection, as_json=True)
    assert response.status_code == 409
    assert fake_model.received == []


def test_the_rate_limit_answers_429(editor_client, connection, ai_node, fake_model, settings):
    settings.EXALATE_AI_DRAFTS_PER_HOUR = 1
    fake_model.answer(draft(outgoing=GOOD_OUT))
    assert post_assist(editor_client, connection, as_json=True).status_code == 200
    response = post_assist(editor_client, connection, as_json=True)
    assert response.status_code == 429
    assert "drafts this hour" in response.json()["message"]


# --- saving a draft ------------------------------------------------------------------------


def test_a_saved_draft_is_a_version_that_says_it_came_from_ai_assist(editor_client, connection):
    data = assist_data(outgoing=GOOD_OUT, assist_prompt=WORDS)
    assert editor_client.post(url(connection), data).status_code == 302
    version = SyncRuleVersion.objects.get(connection=connection)
    assert version.note == f"AI Assist: {WORDS}"
    assert version.assist_prompt == WORDS
    page = editor_client.get(url(connection, "rules_version", number=1)).content.decode()
    assert 'id="version-assist"' in page and WORDS in page


def test_an_edit_without_a_draft_says_nothing_of_ai_assist(editor_client, connection):
    editor_client.post(url(connection), assist_data(outgoing=GOOD_OUT, note="by hand"))
    version = SyncRuleVersion.objects.get(connection=connection)
    assert (version.note, version.assist_prompt) == ("by hand", "")


# --- the settings page ---------------------------------------------------------------------


def settings_data(**changes):
    return {"ai_url": "https://models.example.com/v1", "ai_model": "gpt-test", **changes}


def test_staff_set_the_endpoint_and_the_key_is_never_shown_back(admin_client, node):
    response = admin_client.post(
        reverse("assist:settings"), settings_data(new_ai_api_key="sk-new-5ecret-key")
    )
    assert response.status_code == 302
    node = GeneralSettings.objects.get()
    assert (node.ai_url, node.ai_model, node.ai_api_key) == (
        "https://models.example.com/v1",
        "gpt-test",
        "sk-new-5ecret-key",
    )
    page = admin_client.get(reverse("assist:settings")).content.decode()
    assert "sk-new-5ecret-key" not in page
    assert 'id="ai-key-state">Set (hidden)' in page
    # Left blank, the key stays; ticked, it goes.
    admin_client.post(reverse("assist:settings"), settings_data())
    assert GeneralSettings.objects.get().ai_api_key == "sk-new-5ecret-key"
    admin_client.post(reverse("assist:settings"), settings_data(remove_ai_api_key="on"))
    assert GeneralSettings.objects.get().ai_api_key == ""


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (settings_data(ai_url="ftp://models.example.com"), "http://"),
        (settings_data(ai_model=""), "Name the model"),
        (settings_data(new_ai_api_key="sk with space"), "spaces or line breaks"),
    ],
)
def test_a_bad_setting_is_refused_and_changes_nothing(admin_client, node, data, error):
    response = admin_client.post(reverse("assist:settings"), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert GeneralSettings.objects.get().ai_url == ""


def test_the_settings_page_is_for_the_nodes_admins(client, node):
    user = get_user_model().objects.create_user("plain", "", "pw-plain-123456")
    user.user_permissions.add(Permission.objects.get(codename="change_connection"))
    client.force_login(user)
    assert client.get(reverse("assist:settings")).status_code == 403


def test_the_admin_edits_ai_assist_with_the_general_settings(admin_client, node):
    change = reverse("admin:nodes_generalsettings_change", args=[node.pk])
    page = admin_client.get(change).content.decode()
    assert 'name="ai_url"' in page and 'name="new_ai_api_key"' in page
    assert 'name="ai_api_key"' not in page
