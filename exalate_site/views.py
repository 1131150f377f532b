"""Project-level pages: health check and error pages that answer JSON under /api/."""

from django.db import connection
from django.db.utils import DatabaseError
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.defaults import page_not_found, server_error

from exalate_site.api_errors import json_404, json_500


@never_cache
def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return HttpResponse("database unavailable", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


def handler404(request, exception):
    if request.path.startswith("/api/"):
        return json_404(request, exception)
    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return json_500(request)
    return server_error(request)
