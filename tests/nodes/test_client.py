"""The client that calls other nodes, against real local servers that misbehave."""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nodes import client
from nodes.validators import InvalidURL, normalize_url
from tests.http_servers import answering, discovery_answer, refusing, silent

REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def private_allowed(settings):
    """The local test servers live on 127.0.0.1, which the guard refuses by default."""
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def short_timeouts(monkeypatch):
    monkeypatch.setattr(client, "CONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(client, "READ_TIMEOUT", 0.5)


def failure(server) -> client.NodeError:
    """Ask `server` (a context manager from http_servers) for discovery; return the error."""
    with server as running, pytest.raises(client.NodeError) as error:
        client.fetch_instance(running.url)
    return error.value


def fake_dns(monkeypatch, table: dict[str, list[str]]):
    """Make `socket.getaddrinfo` answer `table` for those names (and normally otherwise)."""

    def getaddrinfo(host, port, *args, **kwargs):
        if host in table:
            family = socket.AF_INET
            return [
                (
                    socket.AF_INET6 if ":" in ip else family,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (ip, port),
                )
                for ip in table[host]
            ]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- normalize_url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("https://Desk.Example.COM/", "https://desk.example.com"),
        ("HTTP://desk.example.com:8080//", "http://desk.example.com:8080"),
        ("  https://desk.example.com/exalate/  ", "https://desk.example.com/exalate"),
        ("https://[2001:DB8::1]:8443/", "https://[2001:db8::1]:8443"),
    ],
)
def test_normalize_url_lower_cases_scheme_and_host_and_drops_the_trailing_slash(typed, normalized):
    assert normalize_url(typed) == normalized


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the destination instance URL"),
        ("desk.example.com", "must start with http:// or https://"),
        ("ftp://desk.example.com", "must start with http:// or https://"),
        ("javascript:alert(1)", "must start with http:// or https://"),
        ("https://", "no host name"),
        ("https://admin:pw@desk.example.com", "user name or password"),
        ("https://desk.example.com/?next=/x", "without ? or # parts"),
        ("https://desk.example.com:99999", "not a valid URL"),
    ],
)
def test_normalize_url_refuses_what_is_not_an_http_base_url(typed, message):
    with pytest.raises(InvalidURL) as error:
        normalize_url(typed)
    assert message in str(error.value)


# --- the outbound guard -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://10.1.2.3",
        "http://172.16.0.9",
        "http://192.168.1.20",
        "http://169.254.169.254",
        "http://100.64.0.1",
        "http://0.0.0.0",
        "http://224.0.0.1",
        "http://240.0.0.1",
        "http://[::1]",
        "http://[fd00::1]",
        "http://[fe80::1]",
        "http://[::ffff:127.0.0.1]",
        "http://[::]",
        "http://[ff02::1]",
    ],
)
def test_the_guard_refuses_private_and_local_addresses(settings, url):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(client.NodeError) as error:
        client.check_outbound_allowed(url)
    assert error.value.kind == "blocked"
    assert "I don't have a URL" in error.value.message


def test_the_guard_refuses_a_host_name_that_resolves_to_a_private_address(settings, monkeypatch):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    fake_dns(monkeypatch, {"intranet.example": ["10.20.30.40"]})
    with pytest.raises(client.NodeError) as error:
        client.check_outbound_allowed("https://intranet.example")
    assert error.value.kind == "blocked"
    assert "intranet.example" in error.value.message


def test_the_guard_refuses_a_name_when_any_of_its_addresses_is_private(settings, monkeypatch):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    fake_dns(monkeypatch, {"mixed.example": ["93.184.216.34", "fd12::7"]})
    with pytest.raises(client.NodeError) as error:
        client.check_outbound_allowed("https://mixed.example")
    assert error.value.kind == "blocked"


def test_the_guard_lets_a_public_address_through(settings, monkeypatch):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    fake_dns(monkeypatch, {"desk.example": ["93.184.216.34", "2606:2800:220:1::1"]})
    client.check_outbound_allowed("https://desk.example")


def test_a_host_name_that_does_not_resolve_is_reported_as_unreachable(settings, monkeypatch):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False

    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    with pytest.raises(client.NodeError) as error:
        client.check_outbound_allowed("https://nowhere.example")
    assert error.value.kind == "unreachable"
    assert "nowhere.example" in error.value.message


def test_the_guard_refuses_before_any_connection_is_made(settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    with answering(200, discovery_answer()) as server, pytest.raises(client.NodeError) as error:
        client.fetch_instance(server.url)
    assert error.value.kind == "blocked"
    assert server.requests == []


def test_with_private_networks_allowed_the_guard_lets_loopback_through(settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    client.check_outbound_allowed("http://127.0.0.1:8000")


def test_the_call_goes_to_the_address_that_was_checked(settings, monkeypatch):
    # A DNS answer that changes between the check and the connection (DNS rebinding)
    # must not send the call elsewhere: the checked address is the one connected to.
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    answers = iter([["127.0.0.1"], ["10.9.9.9"], ["10.9.9.9"]])
    real_is_forbidden = client._is_forbidden

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "rebind.example":
            ip = next(answers)[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    # Let the first answer (the local test server) count as public for this test only.
    monkeypatch.setattr(
        client, "_is_forbidden", lambda a: a != "127.0.0.1" and real_is_forbidden(a)
    )
    with answering(200, discovery_answer()) as server:
        port = server.url.rsplit(":", 1)[1]
        info = client.fetch_instance(f"http://rebind.example:{port}")
    assert info.platform == "xurrent"
    assert server.requests == ["/api/v1/instance/"]


def test_pinned_target_keeps_the_host_name_for_the_host_header_and_tls(settings, monkeypatch):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    fake_dns(monkeypatch, {"desk.example": ["2606:2800:220:1::1"]})
    target, headers, extensions = client.pinned_target("https://desk.example:8443/api/v1/x/")
    assert target == "https://[2606:2800:220:1::1]:8443/api/v1/x/"
    assert headers == {"Host": "desk.example:8443"}
    assert extensions == {"sni_hostname": "desk.example"}


# --- calls against misbehaving servers ----------------------------------------------------


def test_fetch_instance_reads_a_valid_discovery_answer(private_allowed):
    answer = discovery_answer(modes=["basic"], short_name="globex")
    with answering(200, answer) as server:
        info = client.fetch_instance(server.url)
    assert info.uid == answer["uid"]
    assert info.modes == ("basic",)
    assert info.short_name == "globex"
    assert info.public is True
    assert server.requests == ["/api/v1/instance/"]


def test_fetch_instance_ignores_modes_it_does_not_know(private_allowed):
    with answering(200, discovery_answer(modes=["script", "visual"])) as server:
        info = client.fetch_instance(server.url)
    assert info.modes == ("script",)


def test_a_refused_connection_is_reported_as_unreachable(private_allowed):
    with refusing() as server, pytest.raises(client.NodeError) as error:
        client.fetch_instance(server.url)
    assert error.value.kind == "unreachable"
    assert "Could not connect" in error.value.message


def test_a_node_that_never_answers_times_out(private_allowed, short_timeouts):
    with silent() as server, pytest.raises(client.NodeError) as error:
        client.fetch_instance(server.url)
    assert error.value.kind == "timeout"
    assert "did not answer in time" in error.value.message
    assert server.requests == ["(connection)"]


def test_an_answer_trickling_in_past_the_total_time_limit_times_out(private_allowed, monkeypatch):
    monkeypatch.setattr(client, "TOTAL_TIMEOUT", 0.0)
    with answering(200, discovery_answer()) as server, pytest.raises(client.NodeError) as error:
        client.fetch_instance(server.url)
    assert error.value.kind == "timeout"


def test_a_server_error_is_reported_with_its_status(private_allowed):
    error = failure(answering(500, b"<h1>Internal Server Error</h1>", "text/html"))
    assert error.kind == "server_error"
    assert "HTTP 500" in error.message


def test_a_json_server_error_is_still_a_server_error(private_allowed):
    error = failure(answering(503, {"code": "down", "detail": "maintenance"}))
    assert error.kind == "server_error"
    assert error.status == 503


def test_an_answer_that_is_not_json_is_not_an_exalate_node(private_allowed):
    error = failure(answering(200, b"<html>Welcome to nginx!</html>", "text/html"))
    assert error.kind == "not_exalate"


@pytest.mark.parametrize(
    "body",
    [
        {"status": "ok", "version": "9.1"},
        [1, 2, 3],
        discovery_answer(uid="not-a-uuid"),
        discovery_answer(public="yes"),
        discovery_answer(modes="basic"),
        discovery_answer(platform=""),
    ],
    ids=["foreign", "a list", "bad uid", "public not a boolean", "modes not a list", "no platform"],
)
def test_json_that_is_not_a_discovery_answer_is_not_an_exalate_node(private_allowed, body):
    with answering(200, body) as server, pytest.raises(client.NodeError) as error:
        client.fetch_instance(server.url)
    assert error.value.kind == "not_exalate"


def test_a_not_found_answer_is_not_an_exalate_node(private_allowed):
    error = failure(answering(404, {"detail": "Not found."}))
    assert error.kind == "not_exalate"


def test_redirects_are_not_followed(private_allowed):
    with answering(200, discovery_answer()) as target:
        headers = {"Location": f"{target.url}/api/v1/instance/"}
        error = failure(answering(302, b"", "text/html", headers))
    assert error.kind == "not_exalate"
    assert "redirect" in error.message
    assert target.requests == []


def test_an_oversized_answer_is_refused(private_allowed):
    huge = b'{"pad": "' + b"x" * (client.MAX_RESPONSE_BYTES + 10) + b'"}'
    with answering(200, huge) as server, pytest.raises(client.NodeError) as error:
        client.fetch_instance(server.url)
    assert error.value.kind == "not_exalate"
    assert "too large" in error.value.message


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("https://Bücher.Example", "https://xn--bcher-kva.example"),
        ("https://straße.example", "https://xn--strae-oqa.example"),
        ("http://a_b.example:8080", "http://a_b.example:8080"),
        ("http://[2001:DB8:0::0:1]", "http://[2001:db8::1]"),
    ],
)
def test_normalize_url_gives_the_host_in_the_form_used_on_the_wire(typed, normalized):
    assert normalize_url(typed) == normalized


@pytest.mark.parametrize(
    "url",
    [
        "http://exa mple.com",
        "http://%00",
        "http://a..b",
        "http://.",
        "http://-x-.com",
        "http://" + "a" * 64 + ".com",
        "http://" + "a." * 130 + "com",
        "https://xn--zz",
        "http://[::1",
        "http://[fe80::1%25eth0]",
    ],
)
def test_normalize_url_refuses_a_host_that_cannot_be_one(url):
    with pytest.raises(InvalidURL):
        normalize_url(url)


@contextmanager
def keep_alive_node(headers: dict[str, str] | None = None) -> Iterator[tuple[str, list[dict]]]:
    """A node on HTTP/1.1 keep-alive answering every GET `{"ok": true}` (with `headers`);
    yields its URL and, per call, the client's address and the headers it sent."""
    calls: list[dict] = []

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            calls.append({"client": self.client_address, "headers": dict(self.headers)})
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()


def test_calls_to_one_node_reuse_a_pooled_connection(settings):
    """Set-up (TCP, and TLS for https) is paid once, not on every call."""
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    with keep_alive_node() as (base, calls):
        for _ in range(5):
            assert client.request("GET", base, "/api/v1/instance/") == (200, {"ok": True})
    assert len({call["client"] for call in calls}) == 1


def test_each_node_host_gets_its_own_pool():
    assert client.pooled_client("a.example:443") is client.pooled_client("a.example:443")
    assert client.pooled_client("a.example:443") is not client.pooled_client("b.example:443")


def test_a_cookie_a_node_sets_is_never_sent_back(settings):
    """Calls carry their token, never cookies: one node cannot plant a cookie that rides
    along on this node's later calls."""
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    with keep_alive_node({"Set-Cookie": "sessionid=planted; Path=/"}) as (base, calls):
        for _ in range(3):
            assert client.request("GET", base, "/api/v1/instance/") == (200, {"ok": True})
    assert [call["headers"].get("Cookie") for call in calls] == [None, None, None]
    assert not client.pooled_client(base.removeprefix("http://")).cookies
