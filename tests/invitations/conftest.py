import uuid

import pytest
from django.core.cache import cache

from invitations import keys
from invitations.services.issuing import initiate_connection


@pytest.fixture(autouse=True)
def fresh_throttle():
    """The accept throttle counts in the cache: start every test with a clean count."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def destination_uid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def invite(node, destination_uid):
    """Initiate a pending connection on this node: `connection, code = invite()`."""

    def make(*, mode: str = "script", name: str = "Support sync", **kwargs):
        defaults = {
            "local_short_name": "desk-a",
            "remote_short_name": "desk-b",
            "description": "Incidents between the two service desks.",
            "remote_url": "https://desk-b.example.com",
            "remote_uid": destination_uid,
        }
        connection, _invitation, code = initiate_connection(
            name=name, mode=mode, **{**defaults, **kwargs}
        )
        return connection, code

    return make


@pytest.fixture
def acceptor_key():
    """The accepting node's X25519 key pair for the connection (its private half)."""
    return keys.new_private_key()


@pytest.fixture
def acceptor(destination_uid, acceptor_key) -> dict:
    return {
        "uid": destination_uid,
        "url": "https://desk-b.example.com",
        "short_name": "desk-b",
        "platform": "xurrent",
        "version": "1.0.0",
        "connection_id": str(uuid.uuid4()),
        "public_key": keys.public_key_text(acceptor_key),
    }


@pytest.fixture
def post_accept(client):
    def post(body, **extra):
        return client.post(
            "/api/v1/invitations/accept/", body, content_type="application/json", **extra
        )

    return post
