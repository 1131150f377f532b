import uuid


def test_discovery_describes_this_node(client, node):
    body = client.get("/api/v1/instance/").json()
    assert body == {
        "uid": str(node.uid),
        "platform": "xurrent",
        "version": "1.0.0",
        "url": "http://testserver",
        "short_name": node.short_name,
        "public": True,
        "modes": ["basic", "script"],
        "api_version": 1,
    }
    assert uuid.UUID(body["uid"])


def test_discovery_offers_basic_only_on_a_free_licence(client, node):
    node.license = "free"
    node.save()
    assert client.get("/api/v1/instance/").json()["modes"] == ["basic"]


def test_api_answers_404_with_the_error_body(client, db):
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert body["detail"]


def test_api_answers_405_with_the_error_body(client, db):
    response = client.post("/api/v1/instance/", {}, content_type="application/json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert "POST" in response.json()["detail"]
