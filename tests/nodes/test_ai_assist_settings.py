"""AI Assist's endpoint in the General Settings: seeded from the environment, the key
encrypted and write-only, set together with the Xurrent account in the admin's form."""

import io

import pytest
from django.core.management import call_command

from nodes.forms import GeneralSettingsForm
from nodes.models import GeneralSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def ai_env(settings):
    settings.EXALATE_AI_URL = "http://127.0.0.1:11434/v1"
    settings.EXALATE_AI_MODEL = "qwen2.5-coder"
    settings.EXALATE_AI_API_KEY = "ollama-key-0001"
    return settings


def test_setup_node_fills_ai_assist_from_the_environment_on_an_older_node(ai_env):
    GeneralSettings.objects.create(node_url="https://a.example.com", short_name="a", license="paid")
    call_command("setup_node", stdout=io.StringIO())
    node = GeneralSettings.objects.get()
    assert (node.ai_url, node.ai_model, node.ai_api_key) == (
        "http://127.0.0.1:11434/v1",
        "qwen2.5-coder",
        "ollama-key-0001",
    )
    assert node.ai_configured


def test_an_endpoint_an_admin_set_is_kept(ai_env):
    node = GeneralSettings.load()
    node.ai_url, node.ai_model = "https://models.example.com/v1", "gpt-test"
    node.set_ai_api_key("")
    node.save()
    assert not node.fill_ai_assist_from_env()
    assert GeneralSettings.objects.get().ai_model == "gpt-test"


def test_without_the_environment_ai_assist_is_off(settings):
    settings.EXALATE_AI_URL = settings.EXALATE_AI_MODEL = settings.EXALATE_AI_API_KEY = ""
    node = GeneralSettings.load()
    assert not node.ai_configured and not node.has_ai_api_key


def test_the_admin_form_saves_the_xurrent_account_and_ai_assist_together():
    node = GeneralSettings.load()
    form = GeneralSettingsForm(
        {
            "xurrent_api_url": node.xurrent_api_url,
            "xurrent_account": "widget-data",
            "xurrent_webhook_key": "",
            "new_xurrent_api_token": "tok-0123456789",
            "ai_url": "https://models.example.com/v1/",
            "ai_model": " gpt-test ",
            "new_ai_api_key": "sk-0123456789",
        },
        instance=node,
    )
    assert form.is_valid(), form.errors
    form.save()
    node = GeneralSettings.objects.get()
    assert node.xurrent_api_token == "tok-0123456789"
    assert (node.ai_url, node.ai_model, node.ai_api_key) == (
        "https://models.example.com/v1",
        "gpt-test",
        "sk-0123456789",
    )
    assert "sk-0123456789" not in GeneralSettingsForm(instance=node).as_p()
