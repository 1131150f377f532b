"""Living through outages of the database or the cache.

Requests answer 503 while one is down (middleware.py), and long-running workers wait
for it to come back instead of dying (`run_until_stopped`). Both ask the same question:
does this exception mean a dependency cannot be reached?
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, InterfaceError, OperationalError, connections

DATABASE = "database"
CACHE = "cache"


def unavailable_dependency(error: BaseException) -> str | None:
    """`"database"` or `"cache"` when `error` means that one cannot be reached, else None.

    OperationalError and InterfaceError are what the database drivers raise when the
    server is gone, refuses connections or drops them; a bug in a query raises others.
    """
    if isinstance(error, OperationalError | InterfaceError):
        return DATABASE
    if isinstance(error, _cache_errors()):
        return CACHE
    return None


def _cache_errors() -> tuple[type[BaseException], ...]:
    """What redis-py raises when Redis cannot be reached. Looked up, not imported: a
    process that never loaded redis (no Redis cache) cannot have met one, and a web
    worker should not load the Redis client for nothing (some 60 modules)."""
    exceptions = sys.modules.get("redis.exceptions")
    if exceptions is None:
        return ()
    # TimeoutError: a Redis that accepts the connection but does not answer in time.
    return (exceptions.ConnectionError, exceptions.TimeoutError)


def close_database_connections() -> None:
    """Drop connections an outage left broken, so the next query opens a fresh one."""
    for connection in connections.all(initialized_only=True):
        # A broken connection may fail to close too: there is nothing left to close then.
        with contextlib.suppress(DatabaseError):
            connection.close()


@dataclass
class Outage:
    """Backoff and log lines for one worker: one line when an outage starts, one when it ends."""

    logger: logging.Logger
    first_wait: float = 1.0
    max_wait: float = 30.0
    down: str | None = None
    waits: int = 0

    def failed(self, error: BaseException, what: str) -> float:
        """Record a failed round; returns how long to wait before the next one."""
        if self.down is None:
            self.logger.warning("%s unavailable, retrying: %s", what, _first_line(error))
        self.down = what
        wait = min(self.max_wait, self.first_wait * 2**self.waits)
        self.waits += 1
        return wait

    def recovered(self) -> None:
        if self.down is not None:
            self.logger.warning("%s back", self.down)
        self.down = None
        self.waits = 0


def run_until_stopped(
    round_: Callable[[], object],
    *,
    interval: float,
    logger: logging.Logger,
    sleep: Callable[[float], None] = time.sleep,
    max_rounds: int | None = None,
    max_wait: float = 30.0,
) -> None:
    """Call `round_` every `interval` seconds, waiting out database and cache outages.

    A round that fails because a dependency is unreachable is retried with a growing wait
    (1, 2, 4 … up to `max_wait` seconds); any other exception ends the loop as before.
    `max_rounds` and `sleep` are there for tests.
    """
    outage = Outage(logger, max_wait=max_wait)
    rounds = 0
    while max_rounds is None or rounds < max_rounds:
        rounds += 1
        try:
            round_()
        except Exception as error:
            what = unavailable_dependency(error)
            if what is None:
                raise
            close_database_connections()
            sleep(outage.failed(error, what))
            continue
        outage.recovered()
        sleep(interval)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
