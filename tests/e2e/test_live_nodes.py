import httpx
import pytest

from tests.livenodes import logged_in_client

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
