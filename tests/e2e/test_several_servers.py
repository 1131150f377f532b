"""One node on several servers, as behind a load balancer: two gunicorn servers, each with
its worker, over one PostgreSQL database and one Redis, with one SECRET_KEY.

Whatever a request leaves behind must hold on the other server: the wizard's state (in the
session), the accept throttle's count (in the cache), the node tokens already used (in the
database); and the outbox, worked by two workers at once, reaches the peer once per row.
Without Redis (the embedded default: SQLite and a cache in each process), the wizard must
still go on across processes. The tests that need PostgreSQL are marked so.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections import Counter
from contextlib import closing
from urllib.parse import quote

import httpx
import psycopg
import pytest
import redis
from django.conf import settings

from connections.auth import sign_token
from connections.services import outbox
from invitations import code as invitation_code
from tests.connections.peers import FakePeer
from tests.http_servers import answering, discovery_answer
from tests.livenodes import LiveNode, logged_in_client, start_servers

pytestmark = pytest.mark.e2e

# Database 15 belongs to tests/test_redis_cache.py; keys of this module carry a prefix of
# their own besides, so that nothing another run left there is counted.
REDIS_DB = 12
ACCEPT_LIMIT = 6
WIZARD = "/connections/initiate/"
PREFIX = "initiate_connection_wizard"
# More rows than one worker can hold at once (two claims of outbox.BATCH_SIZE in flight),
# so that both workers have rows to take: each row must still reach the peer once.
NOTIFICATIONS = (outbox.BATCHES_IN_FLIGHT + 2) * outbox.BATCH_SIZE


@pytest.fixture(scope="module")
def database_url():
    """A fresh PostgreSQL database on the server the suite uses, dropped afterwards."""
    db = settings.DATABASES["default"]
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or "5432"
    user, password = db["USER"], db["PASSWORD"]
    name = f"exalate_multi_{secrets.token_hex(4)}"
    server = psycopg.connect(
        host=host, port=port, user=user, password=password, dbname="postgres", autocommit=True
    )
    server.execute(f'CREATE DATABASE "{name}"')
    login = quote(user) + (f":{quote(password)}" if password else "")
    try:
        yield f"postgres://{login}@{host}:{port}/{name}"
    finally:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.close()


@pytest.fixture(scope="module")
def cache_url():
    """Redis, empty for this module: its keys live under a prefix no other run uses."""
    prefix = f"exalate-multi-{secrets.token_hex(4)}"
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.ping()
    yield f"redis://127.0.0.1:6379/{REDIS_DB}?key_prefix={prefix}"
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory, database_url, cache_url) -> list[LiveNode]:
    started = start_servers(
        tmp_path_factory.mktemp("multi"),
        "multi",
        DATABASE_URL=database_url,
        CACHE_URL=cache_url,
        EXALATE_ACCEPT_RATE=f"{ACCEPT_LIMIT}/min",
    )
    yield started
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def peer():
    fake = FakePeer().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def paired(servers, peer) -> dict[str, str]:
    """An active connection of the node towards `peer`: what its tokens are made of."""
    secret, remote_uid = secrets.token_urlsafe(32), str(uuid.uuid4())
    out = servers[0].shell(
        "from connections.models import Connection\n"
        "from nodes.models import GeneralSettings\n"
        "from django.utils import timezone\n"
        "c = Connection.objects.create(name='Across servers', mode='script', role='source', "
        "local_short_name='acme', remote_short_name='globex', "
        f"remote_url={peer.url!r}, remote_uid={remote_uid!r}, "
        f"remote_connection_id={str(uuid.uuid4())!r}, remote_platform='xurrent', "
        f"status='active', activated_at=timezone.now(), shared_secret={secret!r})\n"
        "print(c.id)\nprint(GeneralSettings.load().uid)"
    )
    connection_id, node_uid = out.splitlines()[-2:]
    return {"id": connection_id, "node_uid": node_uid, "secret": secret, "remote": remote_uid}


def wait_until(check, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def post_step(browser: httpx.Client, server: LiveNode, step: str, **fields) -> httpx.Response:
    data = {f"{step}-{name}": value for name, value in fields.items()}
    data[f"{PREFIX}-current_step"] = step
    data["csrfmiddlewaretoken"] = browser.cookies["csrftoken"]
    url = f"{server.url}{WIZARD}"
    response = browser.post(url, data=data, headers={"Referer": url})
    assert response.status_code == 200, response.text
    return response


def walk_the_wizard(servers: list[LiveNode], name: str) -> None:
    """Initiate a connection with the wizard, each step on the other server."""
    one, two = servers
    # One browser, one cookie jar: cookies are per host, not per port.
    with (
        answering(200, discovery_answer(short_name="globex")) as globex,
        closing(logged_in_client(one)) as browser,
    ):
        assert "Step 1 of 4" in browser.get(f"{two.url}{WIZARD}").text
        page = post_step(browser, one, "destination", destination_url=globex.url)
        assert "Step 2 of 4" in page.text
        page = post_step(browser, two, "mode", mode="script")
        assert "Step 3 of 4" in page.text
        check = re.search(r'name="details-destination_check" value="([^"]*)"', page.text)
        assert check, page.text
        page = post_step(
            browser,
            one,
            "details",
            local_short_name="acme",
            remote_short_name="globex",
            name=name,
            description="",
            destination_check=check.group(1),
        )
        shown = re.search(r'id="invitation-code"[^>]*>([^<]+)<', page.text)
        assert shown, page.text
        invitation = invitation_code.decode(shown.group(1).strip())
        assert invitation.name == name
        assert invitation.source_url == one.url
        # The destination's answer, kept in the session, served the later steps on both.
        assert globex.requests == ["/api/v1/instance/"]
        for server in servers:
            listing = browser.get(f"{server.url}/connections/").text
            row = f'data-connection-id="{invitation.connection_id}" data-status="pending"'
            assert row in listing


@pytest.mark.postgres
def test_the_initiate_wizard_goes_on_whichever_server_each_step_reaches(servers):
    walk_the_wizard(servers, "Acme to Globex across servers")


def test_without_redis_the_wizard_still_goes_on_whichever_process_each_step_reaches(tmp_path):
    # Two servers over one SQLite file, each process with its own local-memory cache (the
    # default): sessions must then be read from the database, never from a stale copy.
    servers = start_servers(tmp_path, "local", worker=False)
    try:
        walk_the_wizard(servers, "Acme to Globex without Redis")
    finally:
        for server in servers:
            server.stop()


@pytest.mark.postgres
def test_the_accept_throttle_counts_the_calls_to_both_servers_together(servers):
    answers = [
        httpx.post(
            f"{servers[number % 2].url}/api/v1/invitations/accept/",
            json={"code": "not-a-code", "acceptor": {}},
        )
        for number in range(ACCEPT_LIMIT + 1)
    ]
    # Per process, each of the 2 x 2 gunicorn workers would have let 6 through.
    assert [a.status_code for a in answers[:ACCEPT_LIMIT]] == [400] * ACCEPT_LIMIT
    assert answers[ACCEPT_LIMIT].status_code == 429
    assert answers[ACCEPT_LIMIT].json()["code"] == "throttled"
    for server in servers:
        assert httpx.post(f"{server.url}/api/v1/invitations/accept/", json={}).status_code == 429


@pytest.mark.postgres
def test_a_node_token_used_on_one_server_is_refused_on_the_other(servers, paired):
    one, two = servers

    def token() -> dict[str, str]:
        signed = sign_token(
            key=paired["secret"],
            issuer=paired["remote"],
            audience=paired["node_uid"],
            connection_id=paired["id"],
        )
        return {"Authorization": f"Bearer {signed}"}

    path = f"/api/v1/connections/{paired['id']}/"
    captured = token()
    assert httpx.get(f"{one.url}{path}", headers=captured).status_code == 200
    replayed = httpx.get(f"{two.url}{path}", headers=captured)
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "token_replayed"
    # The other server takes a fresh token: only the replay was refused.
    assert httpx.get(f"{two.url}{path}", headers=token()).status_code == 200


@pytest.mark.postgres
def test_two_workers_deliver_each_of_the_queued_notifications_once(servers, paired, peer):
    node = servers[0]
    before = len(peer.received)
    worker_logs = [
        (server.worker_log_path, server.worker_log_path.stat().st_size) for server in servers
    ]
    # Queued in one transaction that wakes both workers at once (LISTEN/NOTIFY).
    node.shell(
        "from django.db import transaction\n"
        "from django.utils import timezone\n"
        "from connections.models import Connection, PeerNotification\n"
        "from nodes.wakeup import wake_workers\n"
        f"c = Connection.objects.get(pk={paired['id']!r})\n"
        "with transaction.atomic():\n"
        "    PeerNotification.objects.bulk_create(PeerNotification(connection=c, "
        "connection_name=c.name, status='active', reason=f'row {n}', changed_at=timezone.now(), "
        "remote_url=c.remote_url, remote_uid=c.remote_uid, "
        "remote_connection_id=c.remote_connection_id, signing_key=c.shared_secret) "
        f"for n in range({NOTIFICATIONS}))\n"
        "    wake_workers()\n"
    )
    wait_until(lambda: len(peer.received) - before >= NOTIFICATIONS)
    states = node.shell(
        "from connections.models import PeerNotification as P\n"
        "print(P.objects.filter(state='delivered', attempts=1).count(), P.objects.count())"
    )
    assert states.splitlines()[-1] == f"{NOTIFICATIONS} {NOTIFICATIONS}"
    received = Counter(r.body["reason"] for r in peer.received[before:])
    assert received == Counter(f"row {n}" for n in range(NOTIFICATIONS))
    # Both workers took part; together they sent each row once.
    delivered = [
        sum(
            int(n)
            for n in re.findall(r"^delivered (\d+),", log.read_bytes()[start:].decode(), re.M)
        )
        for log, start in worker_logs
    ]
    assert sum(delivered) == NOTIFICATIONS
    assert all(count > 0 for count in delivered), delivered
