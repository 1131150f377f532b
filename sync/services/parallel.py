"""Working on several twins at once within one worker.

Most of a twin's time goes to waiting for Xurrent and for the other node; a few twins
handled side by side wait together. Each thread has its own database connection (Django
gives one per thread) and its own Xurrent client; the sandbox is shared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django import db
from django.conf import settings

from nodes.models import end_request, start_request

T = TypeVar("T")
R = TypeVar("R")

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


def for_each(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`[func(item) for item in items]`, SYNC_THREADS at a time; results in order. An
    exception of any item is raised (after all items are done)."""
    threads = settings.SYNC_THREADS
    if threads <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    pool = _executor(threads)
    futures = [pool.submit(_in_thread, func, item) for item in items]
    return [future.result() for future in futures]


def _in_thread(func: Callable[[T], R], item: T) -> R:
    # The General Settings are read once for the item, as in the worker's own thread
    # (run_sync_round), not on every call that asks (each read decrypts the secrets).
    start_request()
    try:
        return func(item)
    finally:
        end_request()
        # A connection an outage broke is not kept for the thread's next item.
        db.close_old_connections()


def _executor(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != size:
            _pool = ThreadPoolExecutor(size, thread_name_prefix="sync-twin")
            _pool_size = size
        return _pool
