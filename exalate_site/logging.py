"""Logging helpers referenced from settings.LOGGING."""

import logging


class NoClientErrorTracebacks(logging.Filter):
    """Keep the one-line warning for 4xx answers but drop their traceback.

    Django logs a refused permission (403) with the full traceback of PermissionDenied,
    which buries real failures; a 5xx keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
