"""The OpenAPI schema says what the API really answers and really refuses."""

import pytest
from rest_framework import serializers

from connections.serializers import ConnectionSideSerializer, StatusReportSerializer
from invitations.serializers import AcceptorSerializer, AcceptRequestSerializer

PEER_OPERATIONS = [
    ("/api/v1/connections/{id}/", "get"),
    ("/api/v1/connections/{id}/status/", "post"),
]


@pytest.fixture
def openapi(client, db) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(("path", "method"), PEER_OPERATIONS)
def test_a_malformed_connection_id_is_documented_and_answered_as_404(client, openapi, path, method):
    operation = openapi["paths"][path][method]
    assert "404" in operation["responses"]
    assert "not_found" in operation["responses"]["404"]["description"]
    response = getattr(client, method)(
        path.replace("{id}", "not-a-uuid"), {}, content_type="application/json"
    )
    assert response.status_code == 404
    assert set(response.json()) == {"code", "detail"}
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(("path", "method"), PEER_OPERATIONS)
def test_a_token_for_another_node_or_connection_is_documented_as_403(openapi, path, method):
    assert "403" in openapi["paths"][path][method]["responses"]


@pytest.mark.parametrize(
    ("component", "serializer"),
    [
        ("AcceptRequest", AcceptRequestSerializer),
        ("Acceptor", AcceptorSerializer),
        ("StatusReport", StatusReportSerializer),
        ("ConnectionSide", ConnectionSideSerializer),
    ],
)
def test_every_text_field_that_refuses_a_blank_has_a_minimum_length(openapi, component, serializer):
    properties = openapi["components"]["schemas"][component]["properties"]
    for name, field in serializer().fields.items():
        if not isinstance(field, serializers.CharField):
            continue
        documented = properties[name].get("minLength", 0)
        if field.allow_blank:
            assert documented == (field.min_length or 0), name
        else:
            assert documented >= max(field.min_length or 0, 1), name


def test_a_blank_short_name_is_refused_as_the_schema_says(client, db, openapi):
    assert openapi["components"]["schemas"]["Acceptor"]["properties"]["short_name"]["minLength"]
    response = client.post(
        "/api/v1/invitations/accept/",
        {"code": "x", "acceptor": {"short_name": ""}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "short_name" in response.json()["errors"]["acceptor"]
