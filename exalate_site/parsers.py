"""The API's JSON parser: DRF's, hardened against bodies built to hurt the server."""

from __future__ import annotations

import io

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """Refuses, with the API's 400 `invalid_request`, what DRF would let through to a 500
    or into memory: JSON nested deeper than Python's recursion limit, and bodies larger than
    Django's DATA_UPLOAD_MAX_MEMORY_SIZE (DRF reads the stream itself, so Django's own
    check on `request.body` never runs)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and stream is not None:
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise ParseError(
                    f"The request body is larger than this node accepts ({limit} bytes)."
                )
            stream = io.BytesIO(body)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("The request body is nested too deeply.") from None
