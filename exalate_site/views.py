"""Project-level pages: health check and error pages that answer JSON under /api/."""

import logging
import sys
import uuid

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.db import connection
from django.db.utils import DatabaseError
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.defaults import page_not_found, server_error

from exalate_site.api_errors import json_404, json_500
from exalate_site.middleware import service_unavailable
from exalate_site.resilience import unavailable_dependency

logger = logging.getLogger(__name__)


@never_cache
def healthz(request):
    """`ok`, or 503 naming what does not answer: logins, sessions and the accept throttle
    need the cache as much as the database."""
    down = [
        name
        for name, answers in (("database", _database_answers), ("cache", _cache_answers))
        if not answers()
    ]
    if down:
        text = " and ".join(down) + " unavailable"
        return HttpResponse(text, status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return False
    return True


def _cache_answers() -> bool:
    # Its own key, so that probes of several servers sharing the cache cannot mix answers.
    key, value = f"exalate:healthz:{uuid.uuid4().hex}", "ok"
    try:
        if isinstance(caches[DEFAULT_CACHE_ALIAS], DummyCache):
            return True  # a deliberate "no cache": nothing to reach
        cache.set(key, value, timeout=10)
        stored = cache.get(key)
        cache.delete(key)
    except Exception as error:  # noqa: BLE001 - unloadable backend, missing library, refused connection
        logger.warning("healthz: cache unavailable (%s: %s)", type(error).__name__, error)
        return False
    return stored == value


def handler404(request, exception):
    if request.path.startswith("/api/"):
        return json_404(request, exception)
    return page_not_found(request, exception)


def handler500(request):
    # Django calls this inside its `except` block, so the exception is at hand. Outages
    # raised in a middleware (outside any view) end here rather than in
    # ServiceUnavailableMiddleware.
    error = sys.exc_info()[1]
    what = unavailable_dependency(error) if error else None
    if what is not None:
        return service_unavailable(request, what, error)
    if request.path.startswith("/api/"):
        return json_500(request)
    return server_error(request)
