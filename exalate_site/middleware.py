"""Project middleware."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


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
