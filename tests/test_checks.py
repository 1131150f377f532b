"""The node's own system checks: its cache can be loaded, and its throttle counts for all."""

import os
import subprocess
import sys

import pytest

from exalate_site.checks import check_cache_backends_load, check_throttle_cache_is_shared
from tests.test_settings import ROOT, run_django

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"}
REDIS = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x/0"}


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_a_cache_backend_that_does_not_exist_is_an_error(settings):
    settings.CACHES = {**settings.CACHES, "other": {"BACKEND": "no.such.CacheBackend"}}
    [error] = check_cache_backends_load(None)
    assert error.id == "exalate.E001"
    assert "'other'" in error.msg and "no.such.CacheBackend" in error.msg


def test_loadable_caches_pass_the_check(settings):
    settings.CACHES = {"default": LOCMEM, "shared": REDIS}
    assert check_cache_backends_load(None) == []


def test_a_redis_url_without_the_redis_package_fails_the_check_at_start():
    # The bug this check is for: the package missing, found only at the first login.
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(['manage.py', 'check'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**run_env(), "CACHE_URL": "redis://127.0.0.1:6379/0"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "exalate.E001" in result.stderr
    assert "redis" in result.stderr


def run_env() -> dict:
    return {
        **{k: v for k, v in os.environ.items() if k not in {"WEB_CONCURRENCY"}},
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "exalate_site.settings",
    }


@pytest.mark.parametrize("backend", ["locmem.LocMemCache", "dummy.DummyCache"])
def test_a_per_process_cache_in_production_warns(settings, monkeypatch, backend):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": f"django.core.cache.backends.{backend}"}}
    [warning] = check_throttle_cache_is_shared(None)
    assert warning.id == "exalate.W001"
    assert "CACHE_URL" in warning.hint and "redis://" in warning.hint


def test_a_shared_cache_does_not_warn(settings, monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    settings.DEBUG = False
    settings.CACHES = {"default": REDIS}
    assert check_throttle_cache_is_shared(None) == []


@pytest.mark.parametrize(
    ("debug", "web_concurrency", "warns"),
    [(True, None, False), (True, "4", True), (False, "1", False), (False, "3", True)],
)
def test_the_worker_count_decides_when_it_is_stated(
    settings, monkeypatch, debug, web_concurrency, warns
):
    settings.DEBUG = debug
    settings.CACHES = {"default": LOCMEM}
    if web_concurrency is None:
        monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    else:
        monkeypatch.setenv("WEB_CONCURRENCY", web_concurrency)
    assert (ids(check_throttle_cache_is_shared(None)) == ["exalate.W001"]) is warns


def test_production_settings_without_a_shared_cache_get_the_warning():
    result = run_django(
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('check')",
        SECRET_KEY="k" * 50,
    )
    assert "exalate.W001" in result.stderr
