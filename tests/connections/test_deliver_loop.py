"""`deliver_notifications --loop` waits out database outages instead of dying."""

import io
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
from django.db.backends.utils import CursorWrapper
from django.db.utils import OperationalError, ProgrammingError
from django.utils import timezone

from connections.management.commands.deliver_notifications import Command
from connections.models import PeerNotification
from connections.services import actions

ROOT = Path(__file__).resolve().parents[2]
LOGGER = "connections.management.commands.deliver_notifications"


def database_failing_first(times: int, error=OperationalError):
    """Patch every query so that the first `times` fail as a lost server would."""
    real_execute = CursorWrapper.execute
    failures = {"left": times}

    def execute(cursor, sql, params=None):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise error("server closed the connection unexpectedly")
        return real_execute(cursor, sql, params)

    return mock.patch.object(CursorWrapper, "execute", execute)


@pytest.fixture
def due_notification(connection, peer):
    actions.deactivate_connection(connection)  # the peer is down: queued
    PeerNotification.objects.update(next_attempt_at=timezone.now())
    peer.start()
    return PeerNotification.objects.get()


@pytest.mark.django_db(transaction=True)
def test_the_loop_carries_on_after_the_database_fails_twice_and_delivers(
    due_notification, peer, caplog
):
    out, waits = io.StringIO(), []
    with caplog.at_level(logging.WARNING, logger=LOGGER), database_failing_first(2):
        Command(stdout=out).deliver_in_loop(
            batch_size=20, now=False, interval=10, sleep=waits.append, max_rounds=3
        )
    assert waits == [1, 2, 10]  # two growing waits for the outage, then the usual interval
    assert out.getvalue() == "delivered 1, to retry 0, failed for good 0\n"
    assert [r.body["status"] for r in peer.received] == ["deactivated"]
    due_notification.refresh_from_db()
    assert due_notification.state == "delivered"
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "database unavailable, retrying",
        "database back",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_long_outage_is_logged_once_and_the_wait_stops_growing_at_30_seconds(db, caplog):
    waits = []
    with caplog.at_level(logging.WARNING, logger=LOGGER), database_failing_first(10):
        Command(stdout=io.StringIO()).deliver_in_loop(
            batch_size=20, now=False, interval=10, sleep=waits.append, max_rounds=10
        )
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith("database unavailable, retrying")


def test_an_error_that_is_no_outage_still_stops_the_loop(db):
    with database_failing_first(1, ProgrammingError), pytest.raises(ProgrammingError):
        Command(stdout=io.StringIO()).deliver_in_loop(
            batch_size=20, now=False, interval=10, sleep=lambda s: None, max_rounds=3
        )


def test_the_loop_process_survives_a_missing_database_until_it_appears(tmp_path):
    """The real command in its own process: the database file's folder is missing at first
    (SQLite cannot open it: OperationalError), then the database is put in place."""
    ready = tmp_path / "ready.sqlite3"
    base_env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG"}}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**base_env, "DATABASE_URL": f"sqlite:///{ready}"},
        capture_output=True,
        text=True,
    )
    assert migrate.returncode == 0, migrate.stderr
    later = tmp_path / "not-yet" / "db.sqlite3"
    log = tmp_path / "loop.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "deliver_notifications", "--loop", "--interval", "0.2"],
            cwd=ROOT,
            env={**base_env, "DATABASE_URL": f"sqlite:///{later}", "LOG_LEVEL": "WARNING"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            assert wait_for(lambda: "database unavailable, retrying" in log.read_text())
            assert process.poll() is None
            later.parent.mkdir()
            shutil.copy(ready, later)
            assert wait_for(lambda: "database back" in log.read_text())
            time.sleep(0.5)
            assert process.poll() is None, log.read_text()
        finally:
            process.terminate()
            process.wait(timeout=10)
    text = log.read_text()
    assert text.count("database unavailable, retrying") == 1
    assert "Traceback" not in text


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
