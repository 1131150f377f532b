"""The API description is built when asked for, and a web worker carries only what its
requests use (exalate_site/openapi.py, and the clients imported at their first call)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from rest_framework.response import Response
from rest_framework.views import APIView

from exalate_site import openapi

ROOT = Path(__file__).resolve().parent.parent

# What a web worker has no use for until a request needs it: the schema generator (with
# django.test and unittest), the Redis client without a Redis cache, the HTTP client, the
# JWT library, cryptography (secrets are decrypted and keys made when first used), the
# Prometheus client, and the JSON log formatter when logs are plain.
NOT_LOADED = [
    "drf_spectacular.openapi",
    "drf_spectacular.generators",
    "drf_spectacular.extensions",
    "django.test",
    "unittest",
    "redis",
    "httpx",
    "jwt",
    "cryptography",
    "prometheus_client",
    "pythonjsonlogger",
]

LOAD_THE_SITE = """
import json, sys
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns  # every app's views, as a worker has after its first request
import exalate_site.wsgi
print(json.dumps([name for name in sys.argv[1:] if name in sys.modules]))
"""


def test_a_web_worker_loads_neither_the_schema_generator_nor_clients_it_has_not_used(
    tmp_path,
):
    env = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    env.update(
        DJANGO_SETTINGS_MODULE="exalate_site.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CACHE_URL="locmemcache://",
    )
    result = subprocess.run(
        [sys.executable, "-c", LOAD_THE_SITE, *NOT_LOADED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_the_schema_describes_the_annotated_views_and_the_node_token(client, db):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    status = schema["paths"]["/api/v1/connections/{id}/status/"]["post"]
    assert "404" in status["responses"]  # an annotation of connections/api.py
    assert status["operationId"] == "v1_connections_status_create"
    assert schema["components"]["securitySchemes"]["nodeToken"]["bearerFormat"] == "JWT"
    assert client.get("/api/docs/").status_code == 200


def test_a_view_imported_after_the_first_schema_is_annotated_at_once(client, db):
    assert client.get("/api/schema/", {"format": "json"}).status_code == 200

    class LateView(APIView):
        @openapi.extend_schema(summary="Came late")
        def get(self, request):
            return Response({})

    schema_class = LateView.get.kwargs["schema"]
    assert schema_class.__name__ == "ExtendedSchema"
