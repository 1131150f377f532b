"""The Xurrent page: for the node's admins, shows the settings but never the token, saves
changes, and runs "Check Xurrent" against the account."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from nodes.models import GeneralSettings
from tests.xurrent.conftest import ACCOUNT, TOKEN

PAGE = "/settings/xurrent/"
CHECK = "/settings/xurrent/check/"


@pytest.fixture
def staff_client(client, db):
    """Staff, but without the permission to change the General Settings."""
    user = get_user_model().objects.create_user("staffer", "", "pw-staffer-123456", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def settings_admin_client(client, db):
    """Not staff, but allowed to change the General Settings."""
    user = get_user_model().objects.create_user("settings-admin", "", "pw-settings-123456")
    user.user_permissions.add(Permission.objects.get(codename="change_generalsettings"))
    client.force_login(user)
    return client


def form(node: GeneralSettings, **changes) -> dict:
    return {
        "xurrent_api_url": node.xurrent_api_url,
        "xurrent_account": node.xurrent_account,
        "xurrent_webhook_key": node.xurrent_webhook_key,
        **changes,
    }


def test_the_page_needs_a_login(client, db):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_user_who_is_neither_staff_nor_settings_admin_is_refused(viewer_client):
    assert viewer_client.get(PAGE).status_code == 403
    assert viewer_client.post(CHECK).status_code == 403
    assert b'href="/settings/xurrent/"' not in viewer_client.get("/connections/").content


def test_the_page_shows_the_settings_and_whether_a_token_is_set(admin_client, configured, caplog):
    caplog.set_level(logging.DEBUG)
    response = admin_client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert configured.xurrent_api_url in html and ACCOUNT in html
    assert '<dd id="token-state">Set (hidden)</dd>' in html
    assert "http://testserver/api/v1/xurrent/webhook/" in html
    assert 'name="new_xurrent_api_token"' in html
    assert TOKEN not in html and TOKEN not in caplog.text
    assert 'href="/settings/xurrent/"' in html  # in the navigation


def test_saving_changes_the_account_and_a_blank_token_keeps_the_token(admin_client, configured):
    response = admin_client.post(PAGE, form(configured, xurrent_account="other-account"))
    assert response.status_code == 302
    node = GeneralSettings.objects.get()
    assert node.xurrent_account == "other-account"
    assert node.xurrent_api_token == TOKEN
    page = admin_client.get(PAGE).content.decode()
    assert "The Xurrent settings are saved" in page


def test_a_new_token_is_saved_and_never_shown(admin_client, node):
    response = admin_client.post(PAGE, form(node, new_xurrent_api_token="brand-new-token-42"))
    assert response.status_code == 302
    assert GeneralSettings.objects.get().xurrent_api_token == "brand-new-token-42"
    assert "brand-new-token-42" not in admin_client.get(PAGE).content.decode()


def test_a_bad_change_is_refused_with_the_reason_and_changes_nothing(admin_client, configured):
    response = admin_client.post(
        PAGE,
        form(
            configured,
            xurrent_account="x y",
            xurrent_webhook_key="nope",
            new_xurrent_api_token="t2",
        ),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "An Xurrent account id has only letters" in html
    assert "This is not a public key in PEM form" in html
    facts = html.split('id="xurrent-facts"')[1].split("</section>")[0]
    assert f"<dt>Account id</dt><dd>{ACCOUNT}</dd>" in facts  # what is in use, not what was typed
    assert "t2" not in html.split('name="new_xurrent_api_token"')[1].split(">")[0]
    node = GeneralSettings.objects.get()
    assert (node.xurrent_account, node.xurrent_api_token) == (ACCOUNT, TOKEN)


def test_staff_without_the_permission_can_look_and_check_but_not_change(staff_client, configured):
    html = staff_client.get(PAGE).content.decode()
    assert 'id="xurrent-form"' not in html
    assert staff_client.post(CHECK).status_code == 200
    assert staff_client.post(PAGE, form(configured, xurrent_account="taken")).status_code == 403
    assert GeneralSettings.objects.get().xurrent_account == ACCOUNT


def test_a_settings_admin_who_is_not_staff_can_change_them(settings_admin_client, configured):
    response = settings_admin_client.post(PAGE, form(configured, xurrent_account="changed"))
    assert response.status_code == 302
    assert GeneralSettings.objects.get().xurrent_account == "changed"


def test_check_xurrent_shows_that_the_account_answers(admin_client, configured):
    response = admin_client.post(CHECK)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<section class="card" id="check-result" data-ok="true">' in html
    assert "accepted, it belongs to Integration User." in html
    assert "calls left" in html


def test_check_xurrent_says_what_is_wrong(admin_client, configured):
    configured.set_xurrent_token("wrong-token")
    configured.save()
    html = admin_client.post(CHECK).content.decode()
    assert 'data-ok="false"' in html
    assert "The API token was refused (401" in html
    assert "wrong-token" not in html


def test_check_xurrent_is_a_post(admin_client, configured):
    assert admin_client.get(CHECK).status_code == 405
