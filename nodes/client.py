"""The one place where this node calls other nodes.

Every outbound call goes through `request()`: short timeouts, no redirects, a capped
response size, JSON only, and the outbound guard that keeps calls away from private
addresses unless `EXALATE_ALLOW_PRIVATE_NETWORKS` is on.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import socket
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from nodes.serializers import InstanceInfo, InstanceSerializer

if TYPE_CHECKING:
    import httpx

# httpx (with the modules it brings, some 100 with its command line's) is imported by the
# first call, not with this module: most requests of a web worker never call a node.

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
# The whole answer must arrive within this time, so a node trickling bytes cannot hold
# a request (and the admin waiting on it) for long.
TOTAL_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 256 * 1024
USER_AGENT = f"exalate-xurrent-node/{settings.EXALATE_VERSION}"


class NodeError(Exception):
    """A call to another node failed. `kind` is machine-readable, the message is for people."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, body=None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.body = body

    @property
    def code(self) -> str | None:
        """The `code` of the remote node's error body, when it sent one."""
        if isinstance(self.body, dict) and isinstance(self.body.get("code"), str):
            return self.body["code"]
        return None


def _is_forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _public_addresses(host: str, port: int) -> list[str]:
    """The host's addresses; NodeError("blocked") when any of them is not public."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        raise NodeError(
            "unreachable", f"Could not find the host {host!r}: check the URL."
        ) from None
    addresses = [info[4][0] for info in infos]
    if not addresses or any(_is_forbidden(address) for address in addresses):
        raise NodeError(
            "blocked",
            f"{host} is a private or local network address, which this node is not allowed "
            "to call. If the destination is in a private network, use "
            '"I don\'t have a URL" and let its admin accept the invitation.',
        )
    return addresses


def check_outbound_allowed(url: str) -> None:
    """Refuse URLs whose host is, or resolves to, a non-public address."""
    if settings.EXALATE_ALLOW_PRIVATE_NETWORKS:
        return
    parts = urlsplit(url)
    _public_addresses(parts.hostname or "", parts.port or _default_port(parts.scheme))


def pinned_target(url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """Where to connect for `url`: (URL to open, extra headers, httpx extensions).

    With the guard on, the host is resolved once, checked, and the call goes to that
    checked address (Host header and TLS name stay the original host). Resolving again
    when connecting would let a DNS answer that changes in between (DNS rebinding)
    lead the call into a private network after all.
    """
    if settings.EXALATE_ALLOW_PRIVATE_NETWORKS:
        return url, {}, {}
    parts = urlsplit(url)
    host = parts.hostname or ""
    address = _public_addresses(host, parts.port or _default_port(parts.scheme))[0]
    netloc = f"[{address}]" if ":" in address else address
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    host_header = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        host_header = f"{host_header}:{parts.port}"
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": host_header}, extensions


# One pool of kept-alive connections per process and per node host name: a call reuses the
# TCP (and TLS) connection of the last one instead of setting up a new one each time.
# Keyed by host name, because with the guard on the call goes to the checked address and
# a TLS connection verified for one name must never carry a call meant for another.
_clients: OrderedDict[str, httpx.Client] = OrderedDict()
_clients_pid = os.getpid()
_clients_lock = threading.Lock()
MAX_POOLED_HOSTS = 64


def pooled_client(host: str) -> httpx.Client:
    import httpx

    global _clients_pid
    with _clients_lock:
        if _clients_pid != os.getpid():  # a forked worker must not share its parent's sockets
            _clients.clear()
            _clients_pid = os.getpid()
        client = _clients.get(host)
        if client is None:
            client = _cookieless_client_class()(
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=30),
            )
            _clients[host] = client
            if len(_clients) > MAX_POOLED_HOSTS:
                # Dropped, not closed: another thread may be mid-call on it; its sockets
                # close when it is collected.
                _clients.popitem(last=False)
        _clients.move_to_end(host)
        return client


@functools.cache
def _cookieless_client_class() -> type[httpx.Client]:
    """httpx.Client without cookies. Neither nodes nor Xurrent use them (every call carries
    its token): a cookie one of them sets is not kept, so it never rides along on a later
    call. It also saves httpx's cookie work, which wraps every request and answer in
    urllib's objects, even when there is no cookie: a tenth of a call to a quick peer."""
    import httpx

    class NoCookies(httpx.Cookies):
        def extract_cookies(self, response: httpx.Response) -> None:
            pass

    no_cookies = NoCookies()

    class CookielessClient(httpx.Client):
        @property
        def cookies(self) -> httpx.Cookies:
            return no_cookies  # empty, so no request gets a Cookie header

    return CookielessClient


def request(
    method: str,
    base_url: str,
    path: str,
    *,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """Call another node and return (HTTP status, parsed JSON body).

    Raises NodeError when the node cannot be reached, times out, or does not answer JSON.
    A JSON error answer (4xx) is returned, not raised: callers map its `code`.
    """
    import httpx

    url = base_url.rstrip("/") + path
    target, pin_headers, extensions = pinned_target(url)
    all_headers = {
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        **(headers or {}),
        **pin_headers,
    }
    deadline = time.monotonic() + TOTAL_TIMEOUT
    client = pooled_client(all_headers.get("Host") or urlsplit(url).netloc)
    try:
        with client.stream(
            method,
            target,
            json=json_body,
            headers=all_headers,
            extensions=extensions,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        ) as response:
            raw = _read_capped(response, deadline, base_url)
            status = response.status_code
    except httpx.TimeoutException:
        raise NodeError("timeout", f"{base_url} did not answer in time.") from None
    except (httpx.TransportError, httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError):
        raise NodeError("unreachable", f"Could not connect to {base_url}.") from None
    return status, _json_answer(status, raw, base_url)


def _json_answer(status: int, raw: bytes, base_url: str) -> dict:
    """The JSON object a node answered with; NodeError for anything a node would not send."""
    if 300 <= status < 400:
        raise NodeError(
            "not_exalate",
            f"{base_url} answered with a redirect (HTTP {status}). Enter the node's "
            "own address, exactly as its General Settings show it.",
            status=status,
        )
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if status >= 500:
        raise NodeError(
            "server_error",
            f"{base_url} answered with a server error (HTTP {status}).",
            status=status,
        )
    if body is None or not isinstance(body, dict):
        raise NodeError(
            "not_exalate",
            f"{base_url} answered, but not like an Exalate node (HTTP {status}).",
            status=status,
        )
    return body


def _read_capped(response: httpx.Response, deadline: float, base_url: str) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise NodeError("not_exalate", "The other node sent an answer that is far too large.")
        if time.monotonic() > deadline:
            raise NodeError("timeout", f"{base_url} did not answer in time.")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_instance(base_url: str) -> InstanceInfo:
    """Ask the node at `base_url` who it is (its discovery endpoint)."""
    status, body = request("GET", base_url, "/api/v1/instance/")
    answer = InstanceSerializer(data=body)
    if status != 200 or not answer.is_valid():
        raise NodeError(
            "not_exalate",
            f"{base_url} answered, but it is not an Exalate node (no valid discovery answer).",
            status=status,
        )
    return answer.validated_data
