"""Working on several twins at once within one worker.

Most of a twin's time goes to waiting for Xurrent and for the other node; a few twins
handled side by side wait together. Each thread has its own database connection (Django
gives one per thread) and its own Xurrent client; the sandbox is shared.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from django import db
from django.conf import settings

from nodes.models import end_request, settings_read_in_this_request, share_request_settings

T = TypeVar("T")
R = TypeVar("R")

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_side: ThreadPoolExecutor | None = None
_lock = threading.Lock()
# A thread's database connection is checked (and dropped when broken) before its next item
# once it has been idle this long, or after an item failed; not before every item (a
# round trip each).
CHECK_AFTER_IDLE = 5.0
_thread = threading.local()


def for_each(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`[func(item) for item in items]`, SYNC_THREADS at a time; results in order. An
    exception of any item is raised (after all items are done)."""
    threads = settings.SYNC_THREADS
    if threads <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    pool = _executor(threads)
    # The General Settings the caller read for this round serve its items too (each read
    # is a query and decrypts the secrets); a thread reads them itself otherwise.
    node = settings_read_in_this_request()
    futures = [pool.submit(_in_thread, func, item, node) for item in items]
    return [future.result() for future in futures]


def beside(func: Callable[[], R]) -> Future | Later:
    """Start `func()` in a thread of its own; `.result()` gives what it returned. A step of
    the round that waits for another node goes on while this thread does another step.
    With SYNC_THREADS at 1 it runs when its result is asked for, after that other step."""
    if settings.SYNC_THREADS <= 1 or db.connection.vendor == "sqlite":
        # SQLite takes one writer at a time: the other thread would only wait for this
        # one's lock (and on an in-memory database fail at once: "table is locked").
        return Later(func)
    global _side
    with _lock:
        if _side is None:
            _side = ThreadPoolExecutor(1, thread_name_prefix="sync-side")
    node = settings_read_in_this_request()
    return _side.submit(_in_thread, lambda _: func(), None, node)


class Later:
    """`beside` without a thread: `func` runs in the caller's thread, when asked."""

    def __init__(self, func: Callable[[], R]):
        self.func = func

    def result(self):
        return self.func()


def _in_thread(func: Callable[[T], R], item: T, node=None) -> R:
    # As in the worker's own thread (run_sync_round), the settings are read once per item
    # at most, not on every call that asks.
    _check_connection()
    share_request_settings(node)
    failed = True
    try:
        result = func(item)
        failed = False
        return result
    finally:
        end_request()
        _thread.checked_at = None if failed else time.monotonic()


def _check_connection() -> None:
    """A connection an outage broke (an item failed) or left idle for a while is checked
    before the thread's next item, and dropped if it is no longer usable."""
    checked_at = getattr(_thread, "checked_at", None)
    if checked_at is None or time.monotonic() - checked_at > CHECK_AFTER_IDLE:
        db.close_old_connections()


def _executor(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != size:
            _pool = ThreadPoolExecutor(size, thread_name_prefix="sync-twin")
            _pool_size = size
        return _pool


def stop_threads() -> None:
    """End this process's sync threads, each closing its database connection first (kept
    open between items otherwise): for the tests, so that no connection outlives its
    test database."""
    global _pool, _pool_size, _side
    with _lock:
        running = [(pool, size) for pool, size in ((_pool, _pool_size), (_side, 1)) if pool]
        _pool, _pool_size, _side = None, 0, None
    for pool, size in running:
        # One task for each thread: a task waits at the barrier until every thread has one.
        barrier = threading.Barrier(size)

        def close(barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(timeout=5)
            finally:
                db.connections.close_all()

        for _ in range(size):
            pool.submit(close)
        pool.shutdown(wait=True)
