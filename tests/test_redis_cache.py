"""CACHE_URL=redis://… as the README says: logins and accepts work, counted in Redis."""

import os
import re
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.livenodes import logged_in_client

ROOT = Path(__file__).resolve().parent.parent
# A database of the machine's Redis kept for tests; CI's two passes run at once, each with its own.
REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('TEST_REDIS_DB', '15')}"


@pytest.fixture
def test_redis():
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_the_redis_client_is_a_runtime_requirement():
    names = {
        re.split(r"[<>=\[ ]", line.strip(), maxsplit=1)[0].lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"redis", "django-axes"} <= names


@pytest.mark.e2e
def test_a_node_on_redis_logs_in_and_throttles_accepts_across_its_workers(live_nodes, test_redis):
    # Two gunicorn workers: only a shared cache makes the throttle hold at 3 per minute.
    node = live_nodes("r", CACHE_URL=REDIS_URL, EXALATE_ACCEPT_RATE="3/min")
    assert httpx.get(f"{node.url}/healthz").text == "ok"
    client = logged_in_client(node)  # the login page, session in Redis and the database
    assert client.get("/connections/").status_code == 200
    body = {
        "code": "not-a-code",
        "acceptor": {
            "uid": str(uuid.uuid4()),
            "url": None,
            "short_name": "desk-b",
            "platform": "xurrent",
            "version": "1.0.0",
            "connection_id": str(uuid.uuid4()),
        },
    }
    statuses = [
        httpx.post(f"{node.url}/api/v1/invitations/accept/", json=body).status_code
        for _ in range(8)
    ]
    assert statuses == [400, 400, 400, 429, 429, 429, 429, 429]
    assert list(test_redis.scan_iter(match=":1:throttle_accept_*"))
