"""Page layout in a real browser: long names and URLs stay inside the window."""

from pathlib import Path

import pytest

from connections.models import Connection

pytestmark = pytest.mark.e2e

CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "app.css"
LONG_URL = "https://" + "x" * 200 + ".example.com"


@pytest.fixture
def long_connection(db):
    return Connection.objects.create(
        name="N" * 100,
        mode="script",
        role="source",
        status="active",
        local_short_name="l" * 40,
        remote_short_name="r" * 40,
        remote_url=LONG_URL,
    )


def show(page, html: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    page.set_content(html.replace('<link rel="stylesheet"', '<link rel="ignored"'))
    page.add_style_tag(path=str(CSS))


@pytest.mark.parametrize("width", [1200, 800])
def test_the_connections_table_fits_the_window_whatever_the_url(
    admin_client, long_connection, page, width
):
    show(page, admin_client.get("/connections/").content.decode(), width)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    badge = page.locator(f'tr[data-connection-id="{long_connection.id}"] .badge').bounding_box()
    assert badge["x"] + badge["width"] <= width


def test_the_connection_page_fits_the_window_with_a_long_name_and_url(
    admin_client, long_connection, page
):
    show(page, admin_client.get(f"/connections/{long_connection.id}/").content.decode(), 800)
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
