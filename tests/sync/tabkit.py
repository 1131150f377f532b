"""What the Sync tab's tests share: an active local connection whose side A talks to a
FakeXurrent that refuses list queries as Xurrent does, users with and without the
permission to change connections, and a helper to make sync errors."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from sync.models import ErrorKind, ErrorPlace, SyncError, Twin, TwinOrigin, TwinStatus
from sync.services.errors import record_error
from sync.services.gateway import use_gateway
from tests.sync.engine import make_local_pair
from tests.sync.fake_xurrent import FakeXurrent
from xurrent.client import XurrentError
from xurrent_sim.store import BadQuery

API_URL = "http://127.0.0.1:8999/v1"


class StrictXurrent(FakeXurrent):
    """A FakeXurrent whose list call refuses a filter the way Xurrent's API does (400 with
    its message), as the real client reports it."""

    def request_pages(self, filters=None, *, sort=None, per_page=100, fields=()):
        try:
            yield from super().request_pages(filters, sort=sort, per_page=per_page, fields=fields)
        except BadQuery as exc:
            raise XurrentError(
                "validation", f"Xurrent refused the call (400: {exc}).", status=400
            ) from None


@pytest.fixture
def xurrent():
    return StrictXurrent("account-a", first_id=1)


@pytest.fixture
def gateway(xurrent):
    with use_gateway(xurrent):
        yield xurrent


@pytest.fixture
def sides(node):
    """(A, B): both sides of an active local connection; the node's account is set up
    (its API URL is what request links are made from)."""
    node.xurrent_api_url = API_URL
    node.xurrent_account = "account-a"
    node.set_xurrent_token("secret-token-0123456789")
    node.save()
    return make_local_pair()


@pytest.fixture
def connection(sides):
    return sides[0]


def make_user(name: str, *codenames: str):
    user = get_user_model().objects.create_user(name, "", f"pw-{name}-123456")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def editor(db):
    return make_user("editor", "view_connection", "change_connection")


@pytest.fixture
def editor_client(client, editor):
    """The test client logged in as `editor`, who may view and change connections but is
    not a superuser; `editor_client.user` is that user."""
    client.force_login(editor)
    client.user = editor
    return client


def tab_url(connection, name: str = "tab", **kwargs) -> str:
    return reverse(f"sync:{name}", kwargs={"pk": connection.pk, **kwargs})


def make_twin(connection, local_id: int, **fields) -> Twin:
    values = {"origin": TwinOrigin.LOCAL, "status": TwinStatus.OPEN, **fields}
    return Twin.objects.create(connection=connection, local_request_id=local_id, **values)


def script_error(twin: Twin, message: str = "NameError: name 'x' is not defined") -> SyncError:
    """A blocking script error on the twin, as the producer records one."""
    return record_error(
        connection=twin.connection,
        twin=twin,
        place=ErrorPlace.PRODUCE,
        kind=ErrorKind.SCRIPT,
        message=message,
        line=3,
        source_line="replica.summary = x",
        blocking=True,
    )
