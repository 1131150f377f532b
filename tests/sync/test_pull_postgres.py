"""Private pull on PostgreSQL: two transactions storing events of one connection at once
take their cursors one after the other, so a cursor never commits below one already
served."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection as db_connection
from django.db import transaction

from sync.models import SyncEvent, Twin, TwinOrigin
from sync.services.feed import events_after
from sync.services.produce import queue_replica
from tests.connections.peers import make_paired


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cursor_taken_by_an_open_transaction_holds_back_the_next_one_until_it_commits(node):
    connection = make_paired(remote_url="")
    twins = [
        Twin.objects.create(connection=connection, origin=TwinOrigin.LOCAL, local_request_id=n)
        for n in (1, 2)
    ]
    first_took = threading.Event()
    seen_while_open: list[list[int]] = []
    times: dict[str, float] = {}

    def slow_first():
        try:
            with transaction.atomic():
                queue_replica(twins[0], {"summary": "first"}, seen_dirty_count=None)
                first_took.set()
                time.sleep(0.5)
                times["first_commits"] = time.monotonic()
        finally:
            db_connection.close()

    def second():
        try:
            first_took.wait(5)
            event = queue_replica(twins[1], {"summary": "second"}, seen_dirty_count=None)
            times["second_stored"] = time.monotonic()
            times["second_cursor"] = event.pull_cursor
        finally:
            db_connection.close()

    threads = [threading.Thread(target=slow_first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_took.wait(5)
    time.sleep(0.2)
    # While the first transaction is open, a pull sees neither event: the second one
    # waits for the first's cursor to commit instead of committing above it.
    seen_while_open.append([e["cursor"] for e in events_after(connection, 0)["events"]])
    for thread in threads:
        thread.join(10)

    assert seen_while_open == [[]]
    assert times["second_stored"] >= times["first_commits"]
    assert times["second_cursor"] == 2
    assert [e["cursor"] for e in events_after(connection, 0)["events"]] == [1, 2]
    assert SyncEvent.objects.get(pull_cursor=1).replica == {"summary": "first"}
