"""Page layout in a real browser: long names and URLs stay inside the window."""

from pathlib import Path

import pytest

from connections.models import Connection

pytestmark = pytest.mark.e2e

CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "app.css"
# How many lines the text of an element takes.
LINES = """el => { const r = document.createRange(); r.selectNodeContents(el);
  return new Set([...r.getClientRects()].map(c => Math.round(c.top))).size; }"""
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
    row = f'tr[data-connection-id="{long_connection.id}"]'
    badge = page.locator(f"{row} .badge").bounding_box()
    assert badge["x"] + badge["width"] <= width
    # Only the long texts wrap: the mode, the role and the status stay whole words.
    for cell in ("td:nth-child(2)", "td:nth-child(3)", ".badge"):
        assert page.locator(f"{row} {cell}").evaluate(LINES) == 1, cell


def test_the_connection_page_fits_the_window_with_a_long_name_and_url(
    admin_client, long_connection, page
):
    show(page, admin_client.get(f"/connections/{long_connection.id}/").content.decode(), 800)
    assert page.evaluate("document.documentElement.scrollWidth") <= 800


def test_the_links_beside_the_code_page_buttons_line_up_with_them(
    admin_client, long_connection, page
):
    show(
        page,
        admin_client.get(f"/connections/{long_connection.id}/invitation/").content.decode(),
        1200,
    )
    done = page.locator("#done").bounding_box()
    link = page.locator("#open-connection").bounding_box()
    assert abs((done["y"] + done["height"] / 2) - (link["y"] + link["height"] / 2)) <= 2
