"""The engine's one door to this node's Xurrent account.

The engine asks `get_gateway(purpose)` for something with XurrentClient's calls (list
pages of requests, read, create and update a request, list and add notes, list teams and
people); that is the client of the General Settings' account, or, in tests, whatever
`use_gateway()` put in place. The purpose (polling, incoming, outgoing, bulk, a person
waiting) is the share of the account's rate budget the calls draw on
(xurrent.client.RateBudget).
Failures are XurrentError, whose kind the engine decides on: retry by itself
(`retryable`), or hold the twin until someone looks.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.utils.dateparse import parse_datetime

from nodes.models import GeneralSettings
from xurrent.client import (
    REQUEST_FIELDS,
    Page,
    Purpose,
    XurrentClient,
    XurrentError,
    budget_for,
)
from xurrent.client import BudgetWait as BudgetWait  # what a bulk call raises when it must wait

# The worker must not sit in one call for long (other twins wait meanwhile): a call that
# cannot be done within this time, waits for the rate budget included, fails and is
# retried by the engine later.
ENGINE_TIME_LIMIT = 15.0

GatewayError = XurrentError


class Gateway(Protocol):
    def request_pages(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        sort: str | None = None,
        per_page: int,
        fields: Sequence[str] = (),
    ) -> Iterator[Page]: ...

    def get_request(self, request_id: int) -> dict[str, Any]: ...

    def create_request(self, fields: Mapping[str, Any]) -> dict[str, Any]: ...

    def update_request(self, request_id: int, fields: Mapping[str, Any]) -> dict[str, Any]: ...

    def list_notes(self, request_id: int) -> Iterator[dict[str, Any]]: ...

    def add_note(self, request_id: int, text: str, *, internal: bool = False) -> dict: ...

    def list_teams(self) -> Iterator[dict[str, Any]]: ...

    def list_people(self) -> Iterator[dict[str, Any]]: ...


class NotConfigured(Exception):
    """This node has no Xurrent account set up: nothing can be synced yet."""


_override = threading.local()


def get_gateway(purpose: Purpose = Purpose.INTERACTIVE) -> Gateway:
    """The client of this node's Xurrent account, as the General Settings say, for calls
    made for `purpose`: the share of the account's rate budget they draw on
    (xurrent.client.RateBudget). A caller that names none is a person waiting."""
    gateway = getattr(_override, "gateway", None)
    if gateway is not None:
        for_purpose = getattr(gateway, "for_purpose", None)
        return for_purpose(purpose) if for_purpose else gateway
    node = GeneralSettings.load()
    if not node.xurrent_configured:
        raise NotConfigured(
            "This node's Xurrent account is not set up (General Settings: API URL, "
            "account and token)."
        )
    budget = budget_for(
        node.xurrent_api_url.rstrip("/"),
        node.xurrent_account,
        per_hour=settings.XURRENT_HOURLY_BUDGET,
        burst=settings.XURRENT_BURST,
    )
    return XurrentClient.from_settings(
        node, time_limit=ENGINE_TIME_LIMIT, budget=budget, purpose=purpose
    )


def gateway_ready() -> bool:
    return getattr(_override, "gateway", None) is not None or (
        GeneralSettings.load().xurrent_configured
    )


@contextlib.contextmanager
def use_gateway(gateway: Gateway) -> Iterator[Gateway]:
    """Let this thread's engine talk to `gateway` (tests, benchmarks)."""
    before = getattr(_override, "gateway", None)
    _override.gateway = gateway
    try:
        yield gateway
    finally:
        _override.gateway = before


@dataclass
class RequestState:
    """A request as the scripts see it: the request and its notes, and Xurrent's clock
    when it answered (`read_at`)."""

    request: dict[str, Any]
    notes: list[dict[str, Any]] = field(default_factory=list)
    read_at: datetime | None = None

    @property
    def id(self) -> int:
        return int(self.request["id"])

    @property
    def updated_at(self) -> datetime | None:
        """When the request last changed, its notes included."""
        times = [parse_time(self.request.get("updated_at"))]
        times += [parse_time(note.get("created_at")) for note in self.notes]
        known = [t for t in times if t is not None]
        return max(known) if known else None


def parse_time(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def answered_at(gateway: Gateway) -> datetime | None:
    """Xurrent's clock at its last answer to `gateway` (its Date header), if it said."""
    info = getattr(gateway, "last_answer", None)
    return getattr(info, "date", None)


# Requests listed with one call (Xurrent's `id` filter takes a list), as Xurrent's pages go.
IDS_PER_CALL = 100

Listed = tuple[dict[str, Any], datetime | None]  # a listed request, and Xurrent's clock then


def read_request(
    gateway: Gateway, request_id: int, *, listed: Listed | None = None
) -> RequestState:
    """The request and its notes. `listed`: the request as a list of several showed it
    (`list_requests_by_id`), so that only its notes are read here."""
    if listed is not None:
        request, read_at = listed
        return RequestState(request, list(gateway.list_notes(request_id)), read_at)
    request = gateway.get_request(request_id)
    read_at = answered_at(gateway)
    # The first call may be told to wait for the budget (bulk's share); the notes then
    # wait their turn, or a read that needs two tokens might never get both at once.
    patient = getattr(gateway, "patient", None)
    rest = patient() if patient else gateway
    return RequestState(request, list(rest.list_notes(request_id)), read_at)


def list_requests_by_id(gateway: Gateway, request_ids: list[int]) -> dict[int, Listed]:
    """These requests read with one call per hundred, instead of one call each: a batch of
    twins to produce (a bulk exalate's above all) costs the account's rate budget and
    Xurrent's time a call, not fifty. A request the list does not show is left out: its
    twin reads it alone (and meets a 404, or the rate budget, there)."""
    ids = sorted(set(request_ids))
    found: dict[int, Listed] = {}
    for start in range(0, len(ids), IDS_PER_CALL):
        chunk = ids[start : start + IDS_PER_CALL]
        page = first_page(
            gateway,
            {"id": ",".join(str(i) for i in chunk)},
            per_page=IDS_PER_CALL,
            fields=REQUEST_FIELDS,
        )
        read_at = answered_at(gateway)
        wanted = set(chunk)
        for item in page.items:
            if isinstance(item.get("id"), int) and item["id"] in wanted:
                found[item["id"]] = (item, read_at)
    return found


def first_page(gateway: Gateway, filters: Mapping[str, Any], **options) -> Page:
    for page in gateway.request_pages(filters, **options):
        return page
    return Page(items=[], info=None)  # type: ignore[arg-type]
