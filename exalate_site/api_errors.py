"""One error body for the whole API: {"code", "detail"} (+ "errors" for fields)."""

from __future__ import annotations

from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from exalate_site.resilience import unavailable_dependency

# DRF's default codes, renamed where the contract has its own word.
CODE_NAMES = {
    "parse_error": "invalid_request",
    "invalid": "invalid_request",
    "not_authenticated": "not_authenticated",
    "authentication_failed": "authentication_failed",
    "permission_denied": "permission_denied",
    "not_found": "not_found",
    "method_not_allowed": "method_not_allowed",
    "not_acceptable": "not_acceptable",
    "unsupported_media_type": "unsupported_media_type",
    "throttled": "throttled",
}


class APIError(exceptions.APIException):
    """An error with a contract code: `raise APIError(409, "invitation_used", "…")`."""

    def __init__(self, status_code: int, code: str, detail: str):
        self.status_code = status_code
        super().__init__(detail=detail, code=code)


def error_body(code: str, detail: str, errors=None) -> dict:
    body = {"code": code, "detail": detail}
    if errors:
        body["errors"] = errors
    return body


def exception_handler(exc, context):
    if unavailable_dependency(exc) is not None:
        # Passed on: ServiceUnavailableMiddleware answers 503 for the API and pages alike.
        return None
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body(
            "invalid_request", "The request body is not valid: see errors.", errors
        )
        return response
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    raw_code = exc.get_codes() if hasattr(exc, "get_codes") else "error"
    code = raw_code if isinstance(raw_code, str) else "error"
    response.data = error_body(CODE_NAMES.get(code, code), str(detail))
    return response


def json_404(request, exception=None):
    return JsonResponse(
        error_body("not_found", "There is nothing at this address."),
        status=status.HTTP_404_NOT_FOUND,
    )


def json_500(request):
    return JsonResponse(
        error_body("server_error", "Something went wrong on this node. Try again later."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


__all__ = ["APIError", "Response", "error_body", "exception_handler"]
