"""`run_worker`: the one background process delivers what peers must be told."""

import io
import threading
import time

import pytest
from django import db
from django.utils import timezone

from connections.management.commands.run_worker import Command
from connections.models import PeerNotification
from connections.services import actions, outbox


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
    monkeypatch.setattr(outbox, "_notify", lambda: woken.append(True))
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
        outbox._notify()
        db.connection.close()

    threading.Thread(target=notify_soon).start()
    started = time.monotonic()
    outbox.wait_for_work(timeout=20)
    # Woken by NOTIFY, long before the timeout.
    assert time.monotonic() - started < 10
