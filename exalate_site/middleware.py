"""Project middleware."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from exalate_site.api_errors import error_body
from exalate_site.resilience import unavailable_dependency

logger = logging.getLogger(__name__)

# Outages of the database or the cache are usually short (a restart, a failover).
RETRY_AFTER_SECONDS = 30


class HeadWithoutBodyMiddleware:
    """Answers HEAD requests with the headers of GET and no body.

    Django leaves removing the body to the server; runserver does, gunicorn does not. A HEAD
    answer with a body breaks the next response on a kept-alive connection (the client reads
    the stray body as the start of it), which is how load balancers and monitors probe a node.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method != "HEAD":
            return response
        if response.streaming:
            response.streaming_content = []
        else:
            response["Content-Length"] = str(len(response.content))
            response.content = b""
        return response


class ServiceUnavailableMiddleware:
    """A database or cache that cannot be reached gives 503 with Retry-After, not 500.

    This catches what views raise, including API views (the API's exception handler passes
    these errors on). Django turns an exception raised inside another middleware (the
    session saved on the way out, say) into a response before any outer middleware could
    catch it, so those reach `handler500` in views.py, which answers the same way.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        what = unavailable_dependency(exception)
        if what is None:
            return None
        return service_unavailable(request, what, exception)


def service_unavailable(request: HttpRequest, what: str, error: BaseException) -> HttpResponse:
    """The 503 answer: the API's JSON error body under /api/, a page elsewhere."""
    # One line, no traceback: an outage is not a bug, and every request during it fails alike.
    logger.warning(
        "%s unavailable: %s %s answered 503 (%s: %s)",
        what,
        request.method,
        request.path,
        type(error).__name__,
        str(error).strip().split("\n", 1)[0],
    )
    if request.path.startswith("/api/"):
        detail = f"This node cannot reach its {what} right now. Try again in a moment."
        response = JsonResponse(error_body("service_unavailable", detail), status=503)
    else:
        # No request given: no context processor runs, so nothing reads the session,
        # the user or the database, which may be what is down.
        html = render_to_string("503.html", {"what": what, "retry_after": RETRY_AFTER_SECONDS})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # Django would log the 503 again as an error.
    response._has_been_logged = True
    return response
