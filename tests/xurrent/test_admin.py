"""Webhook hints in the operations view: listed, searchable by object id, read-only."""

from __future__ import annotations

import pytest

from xurrent.models import WebhookHint

HINTS = "/admin/xurrent/webhookhint/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def hints():
    WebhookHint.objects.create(event="request.update", object_id=4321, account="acme")
    WebhookHint.objects.create(event="request.create", object_id=77, account="acme")


def test_operators_see_the_hints(admin_client, hints):
    html = admin_client.get(HINTS).content.decode()
    assert "request.update" in html and "4321" in html and "request.create" in html


@pytest.mark.parametrize(("term", "found"), [("4321", "1 result"), ("not-a-number", "0 results")])
def test_hints_are_found_by_object_id_and_other_text_finds_none(admin_client, hints, term, found):
    response = admin_client.get(HINTS, {"q": term})
    assert response.status_code == 200
    assert f"{found} (" in response.content.decode()


def test_hints_cannot_be_added_or_changed(admin_client, hints):
    hint = WebhookHint.objects.first()
    assert admin_client.get(f"{HINTS}add/").status_code == 403
    page = admin_client.get(f"{HINTS}{hint.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
