"""The engine's one door to this node's Xurrent account.

Everything the engine asks of Xurrent goes through a `Gateway`: list, read, create and
update requests, list and add notes. The real one wraps `xurrent.client`; tests may put
another in place with `use_gateway()`. Failures arrive as GatewayError with a kind the
engine decides on: retry by itself (network, server, rate_limited) or hold the twin
until someone looks (invalid, not_found, auth, config).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# Marks what this node writes (X-4me-Source sets the `source` of created records).
SOURCE_MARKER = "exalate"

RETRYABLE = frozenset({"network", "server", "rate_limited"})


class GatewayError(Exception):
    """Xurrent did not do what was asked. `kind` is one of: network, server,
    rate_limited, invalid (422 and other 4xx), not_found, auth, config."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, retry_after=None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


@dataclass
class Page:
    """One page of a request list, with Xurrent's clock at the time it answered."""

    items: list[dict[str, Any]]
    next_page: int | None = None
    server_time: datetime | None = None
    total: int | None = None


@dataclass
class RequestState:
    """A request as the scripts see it: the request and its notes."""

    request: dict[str, Any]
    notes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.request["id"])

    def with_notes(self) -> dict[str, Any]:
        return {**self.request, "notes": self.notes}


class Gateway(Protocol):
    def list_requests(
        self,
        filters: dict[str, str],
        *,
        sort: str | None = None,
        page: int = 1,
        per_page: int = 100,
    ) -> Page: ...

    def get_request(self, request_id: int) -> dict[str, Any]: ...

    def create_request(self, fields: dict[str, Any]) -> dict[str, Any]: ...

    def update_request(self, request_id: int, fields: dict[str, Any]) -> dict[str, Any]: ...

    def list_notes(self, request_id: int) -> list[dict[str, Any]]: ...

    def add_note(self, request_id: int, text: str, *, internal: bool) -> dict[str, Any]: ...


_override = threading.local()


def get_gateway() -> Gateway:
    """The gateway to this node's Xurrent account, as the General Settings say."""
    gateway = getattr(_override, "gateway", None)
    if gateway is not None:
        return gateway
    from sync.services.xurrent_adapter import open_gateway

    return open_gateway()


@contextlib.contextmanager
def use_gateway(gateway: Gateway) -> Iterator[Gateway]:
    """Let this thread's engine talk to `gateway` (tests, the local benchmark)."""
    before = getattr(_override, "gateway", None)
    _override.gateway = gateway
    try:
        yield gateway
    finally:
        _override.gateway = before


def read_request(gateway: Gateway, request_id: int) -> RequestState:
    return RequestState(gateway.get_request(request_id), gateway.list_notes(request_id))


def each_request(gateway: Gateway, filters: dict[str, str], *, sort: str | None = None):
    """Every request matching `filters`, page by page; yields (page, request)."""
    number: int | None = 1
    while number is not None:
        page = gateway.list_requests(filters, sort=sort, page=number)
        for item in page.items:
            yield page, item
        number = page.next_page
