"""`run_worker`: the one background process delivers what peers must be told."""

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django import db
from django.db import transaction
from django.utils import timezone

from connections.management.commands.run_worker import Command
from connections.models import PeerNotification
from connections.services import actions
from nodes import wakeup
from tests.connections.peers import FakePeer, make_paired
from tests.livenodes import logged_in_client, post_form

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def due_notification(connection, peer):
    actions.deactivate_connection(connection)  # the peer is down: queued
    PeerNotification.objects.update(next_attempt_at=timezone.now())
    peer.start()
    return PeerNotification.objects.get()


def test_a_round_of_the_worker_delivers_what_is_due(due_notification, peer):
    out, waits = io.StringIO(), []
    Command(stdout=out).work(batch_size=20, idle=5, max_rounds=1, wait=waits.append)
    assert out.getvalue() == "delivered 1, to retry 0, failed for good 0\n"
    assert [r.body["status"] for r in peer.received] == ["deactivated"]
    assert waits == [5]  # then it waits for work, at most --idle seconds
    due_notification.refresh_from_db()
    assert due_notification.state == "delivered"


def test_an_idle_worker_says_nothing(db):
    out = io.StringIO()
    Command(stdout=out).work(batch_size=20, idle=1, max_rounds=2, wait=lambda seconds: None)
    assert out.getvalue() == ""


def test_queuing_a_notification_wakes_workers_after_the_commit(
    connection, peer, monkeypatch, django_capture_on_commit_callbacks
):
    woken = []
    monkeypatch.setattr(wakeup, "_notify", lambda: woken.append(True))
    monkeypatch.setattr(db.connection, "vendor", "postgresql")
    with django_capture_on_commit_callbacks(execute=True):
        actions.deactivate_connection(connection)
        assert woken == []  # not before the row is visible to the workers
    assert woken == [True]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_waiting_worker_wakes_at_once_on_postgresql():
    def notify_soon():
        time.sleep(0.3)
        wakeup._notify()
        db.connection.close()

    threading.Thread(target=notify_soon).start()
    started = time.monotonic()
    wakeup.wait_for_work(timeout=20)
    # Woken by NOTIFY, long before the timeout.
    assert time.monotonic() - started < 10


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_notifies_wakes_a_worker_once_not_once_each():
    wakeup.wait_for_work(timeout=0.01)  # listening, as a worker is after its first wait

    def burst():
        for _ in range(50):  # as 50 webhooks do while the worker is busy
            with transaction.atomic():
                wakeup.wake_workers()
        db.connection.close()

    sender = threading.Thread(target=burst)
    sender.start()
    sender.join()
    db.connection.cursor().execute("SELECT 1")  # the worker's round: the NOTIFYs arrive

    started = time.monotonic()
    wakeup.wait_for_work(timeout=20)  # at once: there is work
    assert time.monotonic() - started < 1
    started = time.monotonic()
    wakeup.wait_for_work(timeout=0.5)  # nothing new since: the whole timeout
    assert time.monotonic() - started >= 0.45


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.e2e
def test_a_running_worker_tells_the_peer_within_2_seconds_of_a_page_action_on_sqlite(
    live_nodes, capsys
):
    """A live node (gunicorn and its worker, SQLite): the page answers at once, and the
    worker, polling, delivers well within 2 s."""
    assert wakeup.POLL_SECONDS <= 0.5
    peer = FakePeer().start()
    try:
        a = live_nodes("a")
        connection_id = a.shell(
            "from tests.connections.peers import make_paired\n"
            f"print(make_paired(remote_url={peer.url!r}).id)"
        ).splitlines()[-1]
        client = logged_in_client(a)
        started = time.monotonic()
        response = post_form(client, f"/connections/{connection_id}/deactivate/", {})
        answered = time.monotonic() - started
        assert response.status_code == 302
        assert wait_for(lambda: peer.received, timeout=10)
        heard = time.monotonic() - started
    finally:
        peer.stop()
    with capsys.disabled():
        print(f"\nSQLite: page answered in {answered:.3f} s, peer told after {heard:.3f} s")
    assert [r.body["status"] for r in peer.received] == ["deactivated"]
    assert heard < 2.0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_waiting_worker_is_woken_by_notify_and_tells_the_peer_within_2_seconds(
    node, settings, capsys
):
    """`run_worker` on PostgreSQL, told to look at the queue only once a minute by itself:
    only LISTEN/NOTIFY can make it deliver within 2 s."""
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    peer = FakePeer().start()
    connection = make_paired(remote_url=peer.url)
    database = settings.DATABASES["default"]
    url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "EXALATE_ALLOW_PRIVATE_NETWORKS": "true",
        "PYTHONUNBUFFERED": "1",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--idle", "60"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        # Ready once its session sits in LISTEN (its first round is done).
        assert wait_for(lambda: listening(database["NAME"]))
        started = time.monotonic()
        actions.deactivate_connection(connection)  # commits, then NOTIFY
        assert wait_for(lambda: peer.received, timeout=10)
        heard = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(timeout=10)
        peer.stop()
    with capsys.disabled():
        print(f"\nPostgreSQL: peer told {heard:.3f} s after the change")
    assert [r.body["status"] for r in peer.received] == ["deactivated"]
    assert heard < 2.0


def listening(database: str) -> bool:
    with db.connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query = %s",
            [database, f"LISTEN {wakeup.CHANNEL}"],
        )
        return cursor.fetchone()[0] > 0
