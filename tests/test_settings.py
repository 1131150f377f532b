import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_django(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    clean.update(env, DJANGO_SETTINGS_MODULE="exalate_site.settings")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_settings_refuse_to_start_without_secret_key_when_debug_is_off():
    result = run_django("import django; django.setup()")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_settings_start_without_secret_key_in_debug():
    result = run_django("import django; django.setup(); print('up')", DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert "up" in result.stdout


def test_deploy_check_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **{
                k: v
                for k, v in os.environ.items()
                if k not in {"DEBUG", "SECURE_SSL_REDIRECT", "DJANGO_ALLOW_ASYNC_UNSAFE"}
            },
            "SECRET_KEY": "x9!" * 20 + "production-grade-random-looking-secret",
            "EXALATE_NODE_URL": "https://desk.example.com",
            # Production runs several workers: their throttle needs a shared cache.
            "CACHE_URL": "redis://127.0.0.1:6379/0",
            # Secrets at rest get keys of their own, apart from SECRET_KEY.
            "EXALATE_SECRET_KEYS": "x3cW8r0y0mN3n1oFJxkq2yTgYxVqQbJ9s1a0pXc7fU4=",
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_settings_read_the_exalate_variables():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.EXALATE_INVITATION_TTL_HOURS, s.EXALATE_ACCEPT_RATE, s.EXALATE_LICENSE, "
        "s.EXALATE_PUBLIC, s.EXALATE_NODE_URL, s.DATABASES['default']['ENGINE'])"
    )
    result = run_django(
        code,
        DEBUG="1",
        EXALATE_INVITATION_TTL_HOURS="0.5",
        EXALATE_ACCEPT_RATE="5/min",
        EXALATE_LICENSE="Free",
        EXALATE_PUBLIC="false",
        EXALATE_NODE_URL="https://a.example.com/",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/whatever",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "0.5",
        "5/min",
        "free",
        "False",
        "https://a.example.com",
        "django.db.backends.postgresql",
    ]


def test_settings_reject_an_unknown_licence():
    result = run_django("import django; django.setup()", DEBUG="1", EXALATE_LICENSE="gold")
    assert result.returncode != 0
    assert "EXALATE_LICENSE" in result.stderr


def test_no_proxy_is_trusted_by_default_and_drf_follows_the_setting():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.EXALATE_TRUSTED_PROXIES, s.REST_FRAMEWORK['NUM_PROXIES'])"
    )
    default = run_django(code, DEBUG="1")
    assert default.returncode == 0, default.stderr
    assert default.stdout.split() == ["0", "0"]
    two = run_django(code, DEBUG="1", EXALATE_TRUSTED_PROXIES="2")
    assert two.stdout.split() == ["2", "2"]
    refused = run_django(code, DEBUG="1", EXALATE_TRUSTED_PROXIES="-1")
    assert refused.returncode != 0
    assert "EXALATE_TRUSTED_PROXIES" in refused.stderr


def test_a_redis_cache_url_uses_djangos_own_redis_backend_with_short_timeouts():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "c = s.CACHES['default']; print(c['BACKEND'], c['LOCATION'], sorted(c['OPTIONS'].items()))"
    )
    result = run_django(code, DEBUG="1", CACHE_URL="redis://127.0.0.1:6379/3?socket_timeout=5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "django.core.cache.backends.redis.RedisCache redis://127.0.0.1:6379/3 "
        "[('socket_connect_timeout', 2), ('socket_timeout', 5)]"
    )


def test_sessions_are_read_from_the_database_unless_the_cache_is_shared():
    # A cache of each process's own would serve one gunicorn worker a stale copy of a
    # session another worker saved (tests/e2e/test_several_servers.py walks into it).
    code = "import django; django.setup(); from django.conf import settings as s; "
    code += "print(s.SESSION_ENGINE.rsplit('.', 1)[-1])"
    engines = {
        url: run_django(code, DEBUG="1", CACHE_URL=url).stdout.strip()
        for url in ["locmemcache://x", "dummycache://", "redis://127.0.0.1:6379/3"]
    }
    assert engines == {
        "locmemcache://x": "db",
        "dummycache://": "db",
        "redis://127.0.0.1:6379/3": "cached_db",
    }


def test_logs_are_one_json_object_a_line_when_asked():
    result = run_django(
        "import django, logging; django.setup(); "
        "logging.getLogger('exalate.test').warning('peer %s is slow', 'desk-b')",
        DEBUG="1",
        LOG_FORMAT="json",
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "exalate.test" in line]
    record = json.loads(line)
    assert record["message"] == "peer desk-b is slow"
    assert (record["level"], record["logger"]) == ("WARNING", "exalate.test")
    assert "time" in record


def test_plain_logs_stay_the_default():
    result = run_django(
        "import django, logging; django.setup(); logging.getLogger('exalate.test').warning('hi')",
        DEBUG="1",
    )
    assert "WARNING exalate.test hi" in result.stdout


def test_the_http_clients_calls_are_not_logged_one_by_one_but_its_warnings_are():
    result = run_django(
        "import django, logging; django.setup(); log = logging.getLogger('httpx'); "
        "print(log.isEnabledFor(logging.INFO), log.isEnabledFor(logging.WARNING))",
        DEBUG="1",
        LOG_LEVEL="INFO",
    )
    assert result.stdout.split() == ["False", "True"], result.stderr


def test_settings_reject_an_unknown_log_format():
    result = run_django("import django; django.setup()", DEBUG="1", LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be plain or json" in result.stderr


def test_settings_read_the_xurrent_account_variables():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.XURRENT_API_URL, s.XURRENT_ACCOUNT, s.XURRENT_API_TOKEN)"
    )
    result = run_django(
        code,
        DEBUG="1",
        XURRENT_API_URL="http://127.0.0.1:8100/v1/",
        XURRENT_ACCOUNT="demo-a",
        XURRENT_API_TOKEN="demo-token",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["http://127.0.0.1:8100/v1", "demo-a", "demo-token"]


def test_settings_reject_an_xurrent_api_url_that_is_not_http():
    result = run_django(
        "import django; django.setup()", DEBUG="1", XURRENT_API_URL="api.xurrent.com"
    )
    assert result.returncode != 0
    assert "XURRENT_API_URL must be an http(s) address" in result.stderr
