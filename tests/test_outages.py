"""While the database or the cache cannot be reached, the node answers 503, never 500."""

import io
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from unittest import mock

import httpx
import pytest
from django.db.backends.utils import CursorWrapper
from django.db.utils import InterfaceError, OperationalError
from django.test import Client

from invitations import keys
from invitations.services.issuing import initiate_connection
from tests.livenodes import GUNICORN, ROOT, free_port

DOWN_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}


def database_down(error=OperationalError):
    return mock.patch.object(
        CursorWrapper, "execute", side_effect=error("could not connect to server")
    )


def assert_api_503(response, what: str):
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert what in body["detail"]
    assert set(body) == {"code", "detail"}


def assert_page_503(response, what: str):
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) > 0
    html = response.content.decode()
    assert "Temporarily unavailable" in html
    assert f"cannot reach its {what}" in html


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_an_api_call_while_the_database_is_down_gets_503_json(client, node, error):
    with database_down(error):
        response = client.get("/api/v1/instance/")
    assert_api_503(response, "database")


def test_the_accept_endpoint_while_the_database_is_down_gets_503_json(client, node):
    _connection, _invitation, code = initiate_connection(
        name="Support sync",
        mode="script",
        local_short_name="desk-a",
        remote_short_name="desk-b",
        remote_url="https://desk-b.example.com",
    )
    acceptor = {
        "uid": str(uuid.uuid4()),
        "url": "https://desk-b.example.com",
        "short_name": "desk-b",
        "platform": "xurrent",
        "version": "1.0.0",
        "connection_id": str(uuid.uuid4()),
        "public_key": keys.public_key_text(keys.new_private_key()),
    }
    with database_down():
        response = client.post(
            "/api/v1/invitations/accept/",
            {"code": code, "acceptor": acceptor},
            content_type="application/json",
        )
    assert_api_503(response, "database")


def test_a_page_while_the_database_is_down_gets_the_503_page(admin_client):
    with database_down():
        response = admin_client.get("/connections/")
    assert_page_503(response, "database")


def test_the_login_page_while_the_database_is_down_gets_the_503_page(client, db):
    with database_down():
        response = client.post("/accounts/login/", {"username": "boss", "password": "x"})
    assert_page_503(response, "database")


class FailingSessionMiddleware:
    """Stands for the session middleware failing on the way out, outside any view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        self.get_response(request)
        raise OperationalError("the database system is shutting down")


@pytest.mark.parametrize(
    ("path", "check"),
    [("/api/v1/instance/", assert_api_503), ("/accounts/login/", assert_page_503)],
)
def test_an_outage_raised_in_a_middleware_gets_503_too(db, settings, path, check):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.FailingSessionMiddleware"]
    response = Client(raise_request_exception=False).get(path)
    check(response, "database")


def test_other_errors_still_answer_500(client, db):
    with mock.patch.object(CursorWrapper, "execute", side_effect=RuntimeError("a bug")):
        response = Client(raise_request_exception=False).get("/api/v1/instance/")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"


def _stdout_handler():
    return next(h for h in logging.getLogger().handlers if h.get_name() == "stdout")


def test_an_outage_is_logged_in_one_warning_line_per_request(admin_client):
    handler = _stdout_handler()
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        with database_down():
            admin_client.get("/connections/")
    finally:
        handler.setStream(previous)
    lines = stream.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    assert "WARNING" in lines[0]
    assert "database unavailable: GET /connections/ answered 503" in lines[0]


@pytest.fixture
def cache_down(settings):
    redis_down(settings)


def redis_down(settings) -> None:
    settings.CACHES = DOWN_REDIS
    # As on a node whose CACHE_URL is Redis: its sessions are kept in the cache too.
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"


def test_healthz_names_the_cache_when_redis_cannot_be_reached(client, db, cache_down):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.content == b"cache unavailable"


def test_healthz_names_both_when_both_are_down(client, db, cache_down):
    with database_down():
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.content == b"database and cache unavailable"


def test_healthz_names_the_cache_when_its_client_library_is_missing(
    client, db, settings, monkeypatch
):
    # CACHE_URL=redis://… without the redis package: Django imports it at first use.
    settings.CACHES = {
        "default": {**DOWN_REDIS["default"], "LOCATION": "redis://127.0.0.1:6379/15"}
    }
    monkeypatch.setitem(sys.modules, "redis", None)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.content == b"cache unavailable"


def test_a_page_while_redis_is_down_gets_the_503_page(admin_client, settings):
    # As on a node whose CACHE_URL is Redis, from the first request on.
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    admin_client.get("/connections/")  # the session exists
    redis_down(settings)
    assert_page_503(admin_client.get("/connections/"), "cache")


def test_the_accept_endpoint_while_redis_is_down_gets_503_json(client, db, cache_down):
    response = client.post(
        "/api/v1/invitations/accept/", {"code": "x"}, content_type="application/json"
    )
    assert_api_503(response, "cache")


def test_a_login_while_redis_is_down_gets_the_503_page(client, admin_user, cache_down):
    response = client.post("/accounts/login/", {"username": "boss", "password": "pw-boss-123456"})
    assert_page_503(response, "cache")


@pytest.mark.e2e
def test_a_live_server_whose_database_and_cache_are_down_answers_503(tmp_path):
    """gunicorn, as in production, with PostgreSQL and Redis addresses nothing listens on."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}},
        "DEBUG": "0",
        "SECRET_KEY": "outage-test-secret-key-0123456789abcdefghijklmnop",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/exalate_nowhere",
        "CACHE_URL": f"redis://127.0.0.1:{free_port()}/0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    log_path = Path(tmp_path / "gunicorn.log")
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(GUNICORN), "exalate_site.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        health = _first_answer(f"{base}/healthz", server, log_path)
        api = httpx.get(f"{base}/api/v1/instance/", timeout=10)
        # A session cookie makes the page read the session (the cache, then the database).
        page = httpx.get(f"{base}/connections/", cookies={"sessionid": "x" * 32}, timeout=10)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert health.status_code == 503
    assert health.text == "database and cache unavailable"
    assert api.status_code == 503 and api.json()["code"] == "service_unavailable"
    assert "database" in api.json()["detail"]
    assert api.headers["Retry-After"]
    assert page.status_code == 503 and "cannot reach its database" in page.text
    assert page.headers["Retry-After"]
    assert "Traceback" not in log_path.read_text()


def _first_answer(url: str, server: subprocess.Popen, log_path: Path) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{log_path.read_text()}")
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer:\n{log_path.read_text()}")
