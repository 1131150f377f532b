"""This node's Xurrent account in the General Settings: seeded from the environment, the
token encrypted and never shown, the webhook key checked."""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.management import call_command
from django.db import connection

from nodes.forms import XurrentAccountForm
from nodes.models import XURRENT_DEFAULT_API_URL, GeneralSettings

pytestmark = pytest.mark.django_db

TOKEN = "tok-Xurrent-SECRET-0123456789"


def public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    return public_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def raw_token_column() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT xurrent_api_token FROM nodes_generalsettings")
        return cursor.fetchone()[0]


def form_data(node: GeneralSettings, **changes) -> dict:
    return {
        "xurrent_api_url": node.xurrent_api_url,
        "xurrent_account": node.xurrent_account,
        "xurrent_webhook_key": node.xurrent_webhook_key,
        **changes,
    }


# --- seeding ---------------------------------------------------------------------------------


def test_a_new_node_takes_its_xurrent_account_from_the_environment(settings):
    settings.XURRENT_API_URL = "http://127.0.0.1:9100/v1"
    settings.XURRENT_ACCOUNT = "widget-data"
    settings.XURRENT_API_TOKEN = TOKEN
    node = GeneralSettings.load()
    assert node.xurrent_api_url == "http://127.0.0.1:9100/v1"
    assert node.xurrent_account == "widget-data"
    assert node.xurrent_api_token == TOKEN
    assert node.xurrent_configured


def test_without_the_environment_a_node_points_at_xurrent_with_no_account(settings):
    settings.XURRENT_API_URL = XURRENT_DEFAULT_API_URL
    settings.XURRENT_ACCOUNT = ""
    settings.XURRENT_API_TOKEN = ""
    node = GeneralSettings.load()
    assert node.xurrent_api_url == "https://api.xurrent.com/v1"
    assert node.xurrent_account == ""
    assert not node.has_xurrent_token
    assert not node.xurrent_configured


def test_the_token_is_stored_encrypted(settings):
    settings.XURRENT_ACCOUNT = "widget-data"
    settings.XURRENT_API_TOKEN = TOKEN
    GeneralSettings.load()
    stored = raw_token_column()
    assert stored and TOKEN not in stored
    assert GeneralSettings.objects.get().xurrent_api_token == TOKEN


def test_setup_node_fills_an_account_the_node_does_not_have_yet(settings, capsys):
    settings.XURRENT_ACCOUNT = ""
    settings.XURRENT_API_TOKEN = ""
    GeneralSettings.load()  # made before the environment named an account
    settings.XURRENT_API_URL = "http://127.0.0.1:9100/v1"
    settings.XURRENT_ACCOUNT = "widget-data"
    settings.XURRENT_API_TOKEN = TOKEN
    call_command("setup_node", username="setup-admin")
    node = GeneralSettings.objects.get()
    assert (node.xurrent_api_url, node.xurrent_account) == (
        "http://127.0.0.1:9100/v1",
        "widget-data",
    )
    assert node.xurrent_api_token == TOKEN
    out = capsys.readouterr().out
    assert "Xurrent account widget-data at http://127.0.0.1:9100/v1, API token set" in out
    assert TOKEN not in out


def test_setup_node_keeps_the_account_an_admin_set(settings):
    settings.XURRENT_ACCOUNT = ""
    node = GeneralSettings.load()
    node.xurrent_account = "chosen-by-admin"
    node.set_xurrent_token("admins-token")
    node.save()
    settings.XURRENT_ACCOUNT = "from-env"
    settings.XURRENT_API_TOKEN = TOKEN
    call_command("setup_node", username="setup-admin")
    node = GeneralSettings.objects.get()
    assert node.xurrent_account == "chosen-by-admin"
    assert node.xurrent_api_token == "admins-token"


# --- the form (admin and the Xurrent page) ------------------------------------------------------


def test_a_blank_new_token_leaves_the_token_as_it_is(node):
    node.set_xurrent_token(TOKEN)
    node.save()
    form = XurrentAccountForm(form_data(node, xurrent_account="acme"), instance=node)
    assert form.is_valid(), form.errors
    form.save()
    node = GeneralSettings.objects.get()
    assert node.xurrent_account == "acme"
    assert node.xurrent_api_token == TOKEN


def test_a_new_token_replaces_the_old_one_and_remove_clears_it(node):
    node.set_xurrent_token(TOKEN)
    node.save()
    form = XurrentAccountForm(form_data(node, new_xurrent_api_token=" new-token "), instance=node)
    assert form.is_valid(), form.errors
    form.save()
    assert GeneralSettings.objects.get().xurrent_api_token == "new-token"
    node = GeneralSettings.objects.get()
    form = XurrentAccountForm(form_data(node, remove_xurrent_api_token="on"), instance=node)
    assert form.is_valid(), form.errors
    form.save()
    assert not GeneralSettings.objects.get().has_xurrent_token


def test_the_form_never_holds_the_token(node):
    node.set_xurrent_token(TOKEN)
    node.save()
    assert TOKEN not in str(XurrentAccountForm(instance=node))


def test_setting_and_removing_the_token_at_once_is_refused(node):
    data = form_data(node, new_xurrent_api_token="x-token", remove_xurrent_api_token="on")
    form = XurrentAccountForm(data, instance=node)
    assert not form.is_valid()
    assert "Either set a new API token or remove" in str(form.errors)


def test_a_token_with_a_line_break_inside_is_refused(node):
    form = XurrentAccountForm(form_data(node, new_xurrent_api_token="abc\ndef"), instance=node)
    assert not form.is_valid()
    assert "spaces or line breaks" in str(form.errors["new_xurrent_api_token"])


@pytest.mark.parametrize(
    ("account", "ok"),
    [("widget-data-center", True), ("acme.eu", True), ("a b", False), ("x\r\nX-Evil: 1", False)],
)
def test_an_account_id_is_one_header_safe_word(node, account, ok):
    form = XurrentAccountForm(form_data(node, xurrent_account=account), instance=node)
    assert form.is_valid() is ok


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("api.xurrent.com/v1", "must start with http:// or https://"),
        ("https://api.xurrent.com/v1?x=1", "without ? or # parts"),
    ],
)
def test_an_api_url_that_is_not_a_base_url_is_refused(node, url, message):
    form = XurrentAccountForm(form_data(node, xurrent_api_url=url), instance=node)
    assert not form.is_valid()
    assert message in str(form.errors["xurrent_api_url"])


def test_an_rsa_public_key_is_taken_as_the_webhook_policy_key(node, rsa_pem):
    pasted = rsa_pem.replace("\n", "\r\n") + "\r\n  "
    form = XurrentAccountForm(form_data(node, xurrent_webhook_key=pasted), instance=node)
    assert form.is_valid(), form.errors
    form.save()
    assert GeneralSettings.objects.get().xurrent_webhook_key == rsa_pem


@pytest.mark.parametrize(
    ("make_key", "message"),
    [
        (lambda: "not a key at all", "not a public key in PEM form"),
        (lambda: public_pem(ec.generate_private_key(ec.SECP256R1())), "must be an RSA public key"),
        (
            lambda: public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
            "at least 2048 bits",
        ),
    ],
)
def test_a_webhook_key_that_is_not_an_rsa_public_key_is_refused(node, make_key, message):
    form = XurrentAccountForm(form_data(node, xurrent_webhook_key=make_key()), instance=node)
    assert not form.is_valid()
    assert message in str(form.errors["xurrent_webhook_key"])
    assert GeneralSettings.objects.get().xurrent_webhook_key == ""


# --- the admin --------------------------------------------------------------------------------


def admin_url(node) -> str:
    return f"/admin/nodes/generalsettings/{node.pk}/change/"


def admin_post(node, **changes) -> dict:
    return {
        "node_url": node.node_url,
        "short_name": node.short_name,
        "public": "on",
        "license": node.license,
        "evaluation_ends_on": "",
        **form_data(node),
        **changes,
    }


def test_the_admin_page_shows_whether_a_token_is_set_never_the_token(admin_client, node, caplog):
    node.set_xurrent_token(TOKEN)
    node.save()
    caplog.set_level(logging.DEBUG)
    page = admin_client.get(admin_url(node))
    assert page.status_code == 200
    html = page.content.decode()
    assert TOKEN not in html
    assert raw_token_column() not in html
    assert "Set (hidden)" in html
    assert 'name="new_xurrent_api_token"' in html
    assert 'href="/settings/xurrent/"' in html
    assert TOKEN not in caplog.text


def test_saving_the_admin_page_with_a_blank_token_keeps_it(admin_client, node):
    node.set_xurrent_token(TOKEN)
    node.save()
    response = admin_client.post(admin_url(node), admin_post(node, xurrent_account="acme"))
    assert response.status_code == 302, response.content.decode()[:2000]
    node = GeneralSettings.objects.get()
    assert node.xurrent_account == "acme"
    assert node.xurrent_api_token == TOKEN


def test_the_admin_sets_a_new_token(admin_client, node):
    response = admin_client.post(admin_url(node), admin_post(node, new_xurrent_api_token=TOKEN))
    assert response.status_code == 302
    assert GeneralSettings.objects.get().xurrent_api_token == TOKEN
    assert TOKEN not in admin_client.get(admin_url(node)).content.decode()
