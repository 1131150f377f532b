import re

import httpx
import pytest

from tests.livenodes import ROOT, logged_in_client

pytestmark = pytest.mark.e2e


def test_two_live_nodes_start_with_their_own_identity(live_nodes):
    a, b = live_nodes("a"), live_nodes("b")
    info_a = httpx.get(f"{a.url}/api/v1/instance/").json()
    info_b = httpx.get(f"{b.url}/api/v1/instance/").json()
    assert info_a["uid"] != info_b["uid"]
    assert info_a["url"] == a.url
    page = logged_in_client(a).get("/connections/")
    assert page.status_code == 200
    assert "Connections" in page.text


def test_an_admin_logs_in_with_a_real_browser(live_nodes, page):
    from tests.e2e.conftest import log_in

    a = live_nodes("a")
    log_in(page, a.url, a.username, a.password)
    assert page.locator("h1").inner_text() == "Connections"
    assert page.get_by_text("No connections yet").is_visible()


def test_a_live_node_serves_its_static_files_hashed_gzipped_and_cached_for_good(live_nodes):
    a = live_nodes("a")
    login_page = httpx.get(f"{a.url}/accounts/login/").text
    match = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', login_page)
    assert match, login_page[:600]
    css = httpx.get(f"{a.url}{match.group(1)}", headers={"Accept-Encoding": "gzip"})
    assert css.status_code == 200
    assert css.headers["content-encoding"] == "gzip"
    assert "immutable" in css.headers["cache-control"]
    assert "max-age=315360000" in css.headers["cache-control"]
    # httpx undoes the gzip: the content is the stylesheet, sent in far fewer bytes.
    assert css.content == (ROOT / "static" / "css" / "app.css").read_bytes()
    assert int(css.headers["content-length"]) < len(css.content) / 2
