"""The accept endpoint in the OpenAPI schema, and a schemathesis run against it."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

ACCEPT = "/api/v1/invitations/accept/"
ERROR_CODES = {
    "400": {"invalid_code", "invalid_request"},
    "403": {"wrong_destination"},
    "404": {"invitation_not_found"},
    "409": {"invitation_used", "mode_unavailable"},
    "410": {"invitation_expired", "invitation_revoked"},
    "429": {"throttled"},
}


@pytest.fixture
def openapi(client, db) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_the_schema_documents_the_request_and_the_answer(openapi):
    operation = openapi["paths"][ACCEPT]["post"]
    request = resolve(openapi, operation["requestBody"]["content"]["application/json"]["schema"])
    assert set(request["required"]) == {"code", "acceptor"}
    acceptor = resolve(openapi, request["properties"]["acceptor"])
    assert {"uid", "short_name", "platform", "connection_id"} <= set(acceptor["required"])
    assert acceptor["properties"]["url"]["nullable"] is True
    answer = resolve(
        openapi, operation["responses"]["200"]["content"]["application/json"]["schema"]
    )
    assert set(answer["properties"]) == {"connection", "public_key"}  # no secret
    connection = resolve(openapi, answer["properties"]["connection"])
    assert {"id", "name", "description", "mode", "status", "source", "destination"} <= set(
        connection["properties"]
    )


def test_the_schema_lists_every_error_code_with_its_status(openapi):
    responses = openapi["paths"][ACCEPT]["post"]["responses"]
    for status, codes in ERROR_CODES.items():
        body = resolve(openapi, responses[status]["content"]["application/json"]["schema"])
        enum = set(resolve(openapi, body["properties"]["code"])["enum"])
        assert enum == codes, status
        assert set(body["required"]) == {"code", "detail"}
        for code in codes:
            assert code in responses[status]["description"]


@pytest.fixture
def accept_api(db, settings):
    # Nothing is throttled here: the run is about every answer's shape, not the rate.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"accept": "100000/min"},
    }
    # Like Django's test client: a finished request must not close the test's database
    # connection (it holds the test transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
        yield schema[ACCEPT]["POST"]
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# Schemathesis' own pytest integration does not run under pytest 9 yet, so its strategies
# drive a plain Hypothesis test (in-process WSGI calls, no network).
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_accept_endpoint_answers_every_generated_request_as_documented(accept_api, mode):
    @given(case=accept_api.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        case.call_and_validate(
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
                negative_data_rejection,
            ]
        )

    check()
