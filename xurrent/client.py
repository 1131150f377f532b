"""The one place where this node calls its Xurrent account (DESIGN.md §11).

`XurrentClient` makes exactly the calls the sync needs: requests (list with filters, sort
and pages; read; create; update) and their notes (list; add), plus `me()` and `account()`
to check the settings. Every failure comes out as one exception, `XurrentError`, whose
`kind` a program can act on and whose message an admin understands.

Calls go through the node's outbound guard (nodes.client.pinned_target): with
EXALATE_ALLOW_PRIVATE_NETWORKS off, an API URL that is or resolves to a private address is
refused before anything is sent. Answers are capped in size and must be JSON.

Limits, as Xurrent's own SDKs handle them: 429 waits for `Retry-After`; a 5xx or a broken
connection is retried with a doubling pause, for reads and updates (a create or a note that
failed that way may have been stored, so it is not sent twice blindly: the error says so
with `uncertain`, and the sync engine looks before it writes again). Everything, waits
included, stays within the client's `time_limit`. A token bucket per account and process
keeps calls under the hourly budget and the burst limit, follows what Xurrent says is
left (`X-RateLimit-Remaining`), and shares the budget between the purposes a client is
made for (`RateBudget`: incoming first, polling's reserve, bulk at most half).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from nodes.client import NodeError, pinned_target, pooled_client

if TYPE_CHECKING:
    # Imported by the first call (as in nodes.client): a web worker whose requests never
    # reach Xurrent does not load it.
    import httpx

logger = logging.getLogger(__name__)

DEFAULT_SOURCE = "exalate"
# A request's attributes as `GET /requests/:id` answers them (xurrent-request-model.md),
# for a list that must show whole requests (`fields=`).
REQUEST_FIELDS = (
    "id",
    "subject",
    "category",
    "impact",
    "status",
    "completion_reason",
    "urgent",
    "team",
    "member",
    "requested_by",
    "requested_for",
    "created_by",
    "source",
    "sourceID",
    "custom_fields",
    "desired_completion_at",
    "waiting_until",
    "created_at",
    "updated_at",
    "completed_at",
    "nodeID",
)
PER_PAGE = 100  # the largest page Xurrent gives
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# Within this time a call has its answer or its error, retries and waits included.
TIME_LIMIT = 60.0
RETRY_BASE = 2.0  # the first pause before a retry, doubled each time (as the SDKs do)
RETRY_MAX = 30.0
# A page of 100 requests is some hundred KB; 100 notes of up to 64 KB each is the most a
# sane answer holds.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
HOURLY_BUDGET = 3600
BURST = 20
BURST_SECONDS = 2.0
USER_AGENT = f"exalate-xurrent-node/{settings.EXALATE_VERSION}"

# Filter fields are plain names; these query parameters are the client's own business.
RESERVED_PARAMS = frozenset({"page", "per_page", "sort", "fields", "api_token"})
_FIELD_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")


class XurrentError(Exception):
    """A call to Xurrent failed.

    `kind` is one of KINDS; `message` is a sentence for an admin; `status` the HTTP status
    when there was an answer; `errors` the validation errors Xurrent listed; `retry_at`
    when Xurrent may be asked again (rate limits); `uncertain` is True when a write may
    have been stored although it failed (an answer lost after the call was sent).
    """

    KINDS = (
        "bad_token",
        "unknown_account",
        "not_found",
        "validation",
        "rate_limited",
        "unreachable",
        "server_error",
        "bad_answer",
    )

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        errors: list[str] | None = None,
        retry_at: datetime | None = None,
        uncertain: bool = False,
    ):
        assert kind in self.KINDS, kind
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.errors = errors or []
        self.retry_at = retry_at
        self.uncertain = uncertain

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed later without anyone changing anything."""
        return self.kind in ("rate_limited", "unreachable", "server_error")


@dataclass(frozen=True)
class AnswerInfo:
    """What Xurrent's last answer said about time and budget."""

    date: datetime | None = None  # Xurrent's clock (the Date header): polls use it
    rate_limit: int | None = None
    rate_remaining: int | None = None
    rate_reset: datetime | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict]
    info: AnswerInfo
    total_entries: int | None = None


# --- filters -------------------------------------------------------------------------------


def xurrent_time(moment: datetime) -> str:
    """A moment as Xurrent writes it: ISO 8601 in UTC to the second."""
    if moment.tzinfo is None:
        raise ValueError("A naive datetime has no place in a filter: give it a time zone.")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _filter_value(value: Any) -> str:
    if value is None:
        return ""  # Xurrent's "is empty"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return xurrent_time(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(_filter_value(item) for item in value)
    return str(value)


def _check_filter_name(name: str) -> None:
    if not name or not set(name) <= _FIELD_CHARACTERS:
        raise XurrentError("validation", f"{name!r} is not a field Xurrent can filter on.")
    if name in RESERVED_PARAMS:
        raise XurrentError(
            "validation", f"{name!r} sets pages or the order of a list; it is not a filter."
        )


def filter_params(filters: Mapping[str, Any] | None) -> dict[str, str]:
    """A filter dict as Xurrent's query parameters: `{"updated_at": ">=2026-…"}` gives
    `updated_at=>=2026-…`. The operator is part of the value (`!`, `<`, `<=`, `>`, `>=`,
    `a<>b`); a list means any of; None means empty; datetimes are written in UTC."""
    params = {}
    for name, value in (filters or {}).items():
        _check_filter_name(name)
        params[name] = _filter_value(value)
    return params


def filters_from_query(query: str) -> dict[str, str]:
    """A filter typed as Xurrent writes it in a URL (`category=incident&team=12`) as a
    filter dict; XurrentError("validation") for anything else."""
    text = query.strip().lstrip("?")
    if not text:
        return {}
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise XurrentError(
            "validation",
            "A filter is field=value pairs joined with &, such as category=incident&team=12.",
        ) from None
    filters: dict[str, str] = {}
    for name, value in pairs:
        _check_filter_name(name)
        if name in filters:
            raise XurrentError(
                "validation",
                f"{name} appears twice; Xurrent joins filters with AND only, once per field "
                "(use a list for several values: status=assigned,in_progress).",
            )
        filters[name] = value
    return filters


# --- the rate budget -------------------------------------------------------------------------


class Purpose(StrEnum):
    """Why a caller asks Xurrent: the rate budget gives each purpose its share."""

    POLL = "poll"  # polls and webhook hints: how this side sees its changes
    INCOMING = "incoming"  # applying the other side's changes (their writes and reads)
    INTERACTIVE = "interactive"  # a person waits: a page, a command, a check
    OUTGOING = "outgoing"  # reading a changed request to send it
    BULK = "bulk"  # bulk exalate: listing its matches and the first read of each


# The shares, in one place (RateBudget's docstring says why). A purpose takes a token only
# while more than this part of the bucket stays behind it: the emptier the bucket, the
# fewer purposes may still draw from it.
LEAVES = {
    Purpose.POLL: 0.0,  # the last eighth is polling's reserve
    Purpose.INCOMING: 1 / 8,
    Purpose.INTERACTIVE: 1 / 8,
    Purpose.OUTGOING: 1 / 4,
    Purpose.BULK: 1 / 2,
}
# Waits shorter than this are rounding errors of the refill, not a missing token (a wait
# for exactly the missing part could otherwise leave a hair short of one, again and again).
TOKEN_EPSILON = 1e-6
BULK_SHARE = 0.5  # of the hourly budget, at most, however idle the rest is
# Purposes that never sleep inside a call for the budget: the call stops at once with
# BudgetWait, and the caller puts the work back until the budget has room (a bulk exalate
# waits in its run, not in a worker thread others need).
YIELDING = frozenset({Purpose.BULK})


class BudgetWait(XurrentError):
    """This node's own rate budget has no token for the purpose now (nothing was sent).
    Unlike Xurrent's 429, it concerns this process and this purpose only: nobody else is
    paused. `retry_at` is when a token should be there."""

    def __init__(self, message: str, *, retry_at: datetime):
        super().__init__("rate_limited", message, retry_at=retry_at)


class RateBudget:
    """A token bucket for one account in this process, shared by purposes by priority.

    A few calls at once, then as many as the hourly budget allows. Xurrent also refuses
    more than `burst` calls in any `burst_seconds`: a bucket that holds C tokens and gains
    r a second lets C + r·W calls through in a window of W seconds, so C and r are chosen
    to keep that one call under the limit (network jitter can bunch calls up a little).

    The shares (DESIGN.md §11: incoming writes come first, polling keeps a share, bulk
    exalate takes at most half), as three simple rules:

    1. A pause stops every purpose: Xurrent's 429 and its Retry-After (`pause`), or its
       word that nothing is left until the reset (`observe`).
    2. Priority by level (LEAVES): each purpose may draw the bucket down only to its
       level. Polling may empty it, so its last eighth is polling's reserve and changes
       are still seen; incoming writes and a person's calls leave that eighth; outgoing
       reads leave a quarter; bulk exalate leaves half. While the bucket is low (tokens
       scarce) only the purposes above take, so incoming is served before bulk, and bulk
       never eats polling's reserve.
    3. Bulk's cap: a bulk call also needs a token of a second bucket that fills at
       BULK_SHARE of the rate, so bulk never uses more than half of the hourly budget
       even when nobody else calls.

    The counts live in this process (`budget_for`: one bucket per account, whatever the
    number of clients); the pause of rule 1 is also stored in the database by the sync
    engine (PollState.pause_account), so it stops every worker.
    """

    def __init__(
        self,
        per_hour: int = HOURLY_BUDGET,
        burst: int = BURST,
        burst_seconds: float = BURST_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rate = min(per_hour / 3600.0, max(burst - 2, 1) / burst_seconds)
        self.capacity = float(max(1, math.floor(burst - 1 - self.rate * burst_seconds)))
        self.tokens = self.capacity
        # Rule 3: bulk's own bucket, filling at its share of the rate.
        self.bulk_rate = self.rate * BULK_SHARE
        self.bulk_capacity = max(1.0, math.floor(self.capacity * BULK_SHARE))
        self.bulk_tokens = self.bulk_capacity
        self.clock = clock
        self.updated = clock()
        self.paused_until = 0.0
        self.lock = threading.Lock()

    def floor(self, purpose: Purpose) -> float:
        """How many tokens `purpose` leaves in the bucket (rule 2). The parts are counted
        on at most one burst of Xurrent's (a few calls kept back are enough to put one
        purpose before another, and a huge test bucket that Xurrent's count of calls left
        clamps must not stop); a bucket of one token has no room for levels."""
        return min(LEAVES[purpose] * min(self.capacity, BURST), self.capacity - 1)

    def _refill(self, now: float) -> None:
        elapsed = now - self.updated
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.bulk_tokens = min(self.bulk_capacity, self.bulk_tokens + elapsed * self.bulk_rate)
        self.updated = now

    def wait_needed(self, purpose: Purpose = Purpose.INTERACTIVE) -> float:
        """Take a token for `purpose` and return 0, or return how long to wait before
        trying again (if nobody else takes tokens meanwhile)."""
        with self.lock:
            now = self.clock()
            self._refill(now)
            if now < self.paused_until:
                return self.paused_until - now
            wait = (self.floor(purpose) + 1 - self.tokens) / self.rate
            if purpose == Purpose.BULK:
                wait = max(wait, (1 - self.bulk_tokens) / self.bulk_rate)
            if wait > TOKEN_EPSILON:  # a token short by a rounding error is a token
                return wait
            self.tokens -= 1
            if purpose == Purpose.BULK:
                self.bulk_tokens -= 1
            return 0.0

    def has_room(self, purpose: Purpose, calls: int) -> bool:
        """Whether `calls` calls for `purpose` could be made now, one after the other,
        without waiting (nothing is taken)."""
        with self.lock:
            now = self.clock()
            self._refill(now)
            if now < self.paused_until:
                return False
            room = self.tokens - self.floor(purpose)
            if purpose == Purpose.BULK:
                room = min(room, self.bulk_tokens)
            return room >= calls - TOKEN_EPSILON

    def spend(
        self,
        purpose: Purpose,
        *,
        patience: float,
        sleep: Callable[[float], None] = time.sleep,
        yielding: bool | None = None,
    ) -> None:
        """Take a token for `purpose`, sleeping for it up to `patience` seconds in all.
        Raises BudgetWait when that is not enough, and at once when `yielding` (by default:
        a purpose of YIELDING), which never sleeps."""
        if yielding is None:
            yielding = purpose in YIELDING
        waited = 0.0
        while (wait := self.wait_needed(purpose)) > 0:
            if yielding:
                raise BudgetWait(
                    f"Waiting for the rate budget until {_at(wait):%H:%M:%S} UTC: {purpose} "
                    "calls use at most their share of the account's hourly budget, so the "
                    "rest of the sync goes on meanwhile.",
                    retry_at=_at(wait),
                )
            if waited + wait > patience:
                raise BudgetWait(
                    f"Rate limited by Xurrent until {_at(wait):%H:%M:%S} UTC: this node keeps "
                    "within the account's hourly budget of calls.",
                    retry_at=_at(wait),
                )
            sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        """Nobody calls this account for `seconds` (a 429's Retry-After)."""
        with self.lock:
            self.paused_until = max(self.paused_until, self.clock() + seconds)

    def observe(self, remaining: int | None, reset_in: float | None) -> None:
        """Follow what Xurrent counts: never more tokens than calls left, and a pause
        until the reset when nothing is left."""
        if remaining is None:
            return
        with self.lock:
            self._refill(self.clock())
            self.tokens = min(self.tokens, float(max(remaining, 0)))
            if remaining <= 0 and reset_in is not None and reset_in > 0:
                self.paused_until = max(self.paused_until, self.clock() + reset_in)


_budgets: dict[tuple[str, str], RateBudget] = {}
_budgets_lock = threading.Lock()


def budget_for(base_url: str, account: str, **options) -> RateBudget:
    """The process's budget for an account (one per account, whatever number of clients)."""
    key = (base_url, account)
    with _budgets_lock:
        budget = _budgets.get(key)
        if budget is None:
            budget = _budgets[key] = RateBudget(**options)
        return budget


# --- the client ------------------------------------------------------------------------------


def _utc_clock() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S UTC")


def _at(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


@dataclass
class _Answer:
    status: int
    headers: httpx.Headers
    body: Any
    links: dict = field(default_factory=dict)


class XurrentClient:
    """Calls one Xurrent account. Cheap to make: the connections are pooled per process.

    One instance is meant for one thread at a time (`last_answer` is the instance's); the
    rate budget is shared by every instance for the same account.
    """

    # Error reports that list a frame's variables (Django's debug page) leave the token out.
    @sensitive_variables("token")
    def __init__(
        self,
        base_url: str,
        account: str,
        token: str,
        *,
        source: str = DEFAULT_SOURCE,
        time_limit: float = TIME_LIMIT,
        retry_base: float = RETRY_BASE,
        retry_max: float = RETRY_MAX,
        read_timeout: float = READ_TIMEOUT,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        budget: RateBudget | None = None,
        purpose: Purpose = Purpose.INTERACTIVE,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.account = account
        self._token = token
        self.source = source
        self.time_limit = time_limit
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.read_timeout = read_timeout
        self.max_response_bytes = max_response_bytes
        self.budget = budget or budget_for(self.base_url, account)
        # What these calls are for: the budget's share they draw on (RateBudget).
        self.purpose = Purpose(purpose)
        # Whether a call of a yielding purpose (YIELDING) stops at once when the budget has
        # no token for it; `patient()` turns it off for the rest of a piece of work.
        self.yielding = self.purpose in YIELDING
        self.sleep = sleep
        self.last_answer = AnswerInfo()
        self._base = urlsplit(self.base_url)

    def __repr__(self) -> str:  # the token stays out of every trace and log line
        return f"<XurrentClient {self.account} at {self.base_url}>"

    def has_room(self, calls: int) -> bool:
        """Whether the rate budget lets these calls' purpose make `calls` calls now."""
        return self.budget.has_room(self.purpose, calls)

    def for_purpose(self, purpose: Purpose) -> XurrentClient:
        """The same account, budget and options, for calls made for `purpose`."""
        other = copy.copy(self)
        other.purpose = Purpose(purpose)
        other.yielding = other.purpose in YIELDING
        other.last_answer = AnswerInfo()
        return other

    def patient(self) -> XurrentClient:
        """The same client, waiting for its tokens instead of yielding: for the later
        calls of a piece of work whose first call got its token. A bulk twin's read takes
        two calls; if the second could yield too, a share that refills one token at a time
        would start that read again and again and never finish it."""
        other = copy.copy(self)
        other.yielding = False
        return other

    @classmethod
    def from_settings(cls, node=None, **options) -> XurrentClient:
        """The client of this node's account, as its General Settings name it."""
        from nodes.models import GeneralSettings

        node = node or GeneralSettings.load()
        if not node.xurrent_account:
            raise XurrentError(
                "unknown_account",
                "No Xurrent account id is set: enter it in the Xurrent settings of this node.",
            )
        if not node.xurrent_api_token:
            raise XurrentError(
                "bad_token",
                "No Xurrent API token is set: enter one in the Xurrent settings of this node.",
            )
        return cls(node.xurrent_api_url, node.xurrent_account, node.xurrent_api_token, **options)

    # --- the calls the sync makes ------------------------------------------------------------

    def me(self) -> dict:
        """The person the token belongs to (proves the token and the account)."""
        return self._object("GET", "/me")

    def account_info(self) -> dict:
        """The account itself."""
        return self._object("GET", "/account")

    def request_pages(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        sort: str | None = None,
        per_page: int = PER_PAGE,
        fields: Sequence[str] = (),
    ) -> Iterator[Page]:
        """The pages of requests matching `filters`, following Xurrent's `Link` header.
        `fields`: the attributes each listed request must have, as `REQUEST_FIELDS` for
        the whole request (asked for, in case a list shows fewer than a GET)."""
        params = {**filter_params(filters), "per_page": _page_size(per_page)}
        if sort:
            _check_filter_name(sort.removeprefix("-"))
            params["sort"] = sort
        if fields:
            params["fields"] = ",".join(fields)
        return self._pages("/requests", params)

    def list_requests(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        sort: str | None = None,
        per_page: int = PER_PAGE,
    ) -> Iterator[dict]:
        """Every request matching `filters`, page after page as they are read."""
        for page in self.request_pages(filters, sort=sort, per_page=per_page):
            yield from page.items

    def get_request(self, request_id: int) -> dict:
        return self._object("GET", f"/requests/{_id(request_id)}", what=f"request {request_id}")

    def create_request(self, fields: Mapping[str, Any]) -> dict:
        return self._object("POST", "/requests", json_body=dict(fields))

    def update_request(self, request_id: int, fields: Mapping[str, Any]) -> dict:
        return self._object(
            "PATCH",
            f"/requests/{_id(request_id)}",
            json_body=dict(fields),
            what=f"request {request_id}",
        )

    def list_notes(self, request_id: int, *, per_page: int = PER_PAGE) -> Iterator[dict]:
        path = f"/requests/{_id(request_id)}/notes"
        params = {"per_page": _page_size(per_page)}
        for page in self._pages(path, params, what=f"request {request_id}"):
            yield from page.items

    def add_note(self, request_id: int, text: str, *, internal: bool = False) -> dict:
        return self._object(
            "POST",
            f"/requests/{_id(request_id)}/notes",
            json_body={"text": text, "internal": internal},
            what=f"request {request_id}",
        )

    # --- the account's teams and people (references given by name) ----------------------------

    def list_teams(self, *, per_page: int = PER_PAGE) -> Iterator[dict]:
        """Every team of the account (`{id, name, …}`), page after page."""
        for page in self._pages("/teams", {"per_page": _page_size(per_page)}):
            yield from page.items

    def list_people(self, *, per_page: int = PER_PAGE) -> Iterator[dict]:
        """Every person of the account (`{id, name, primary_email, …}`), page after page."""
        for page in self._pages("/people", {"per_page": _page_size(per_page)}):
            yield from page.items

    # --- answers of the right shape ------------------------------------------------------------

    def _object(self, method: str, path: str, *, json_body=None, what: str = "") -> dict:
        answer = self._call(method, self.base_url + path, json_body=json_body, what=what)
        if not isinstance(answer.body, dict):
            raise self._bad_answer(f"{method} {path} did not answer with a JSON object")
        return answer.body

    def _pages(self, path: str, params: dict[str, str], *, what: str = "") -> Iterator[Page]:
        url: str | None = self.base_url + path
        while url is not None:
            answer = self._call("GET", url, params=params, what=what)
            params = {}  # the next page's address carries the query itself
            body = answer.body
            if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
                raise self._bad_answer(f"GET {path} did not answer with a JSON list")
            total = _int_header(answer.headers, "X-Pagination-Total-Entries")
            yield Page(items=body, info=self.last_answer, total_entries=total)
            url = self._next_url(answer.links)

    def _next_url(self, links: dict) -> str | None:
        link = links.get("next")
        if not link or not link.get("url"):
            return None
        url = link["url"]
        parts = urlsplit(url)
        # The token goes wherever the link points: only ever to the API itself.
        if (parts.scheme, parts.netloc) != (self._base.scheme, self._base.netloc) or not (
            parts.path.startswith(self._base.path)
        ):
            raise self._bad_answer("the next page's link points away from the API URL")
        return url

    def _bad_answer(self, what: str, status: int | None = None) -> XurrentError:
        return XurrentError(
            "bad_answer",
            f"{self.base_url} answered, but not like Xurrent: {what}. Check the Xurrent API "
            "URL in the settings.",
            status=status,
        )

    # --- one call, with retries --------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json_body=None,
        what: str = "",
    ) -> _Answer:
        deadline = time.monotonic() + self.time_limit
        # A create or a note that may have reached Xurrent is never sent again blindly.
        repeatable = method in ("GET", "PATCH", "HEAD")
        attempt = 0
        while True:
            self._wait_for_budget(deadline)
            try:
                answer = self._send(method, url, params, json_body, deadline)
            except _Transient as failure:
                if failure.sent and not repeatable:
                    raise failure.error(uncertain=True) from None
                self._pause_before_retry(attempt, deadline, failure.error())
                attempt += 1
                continue
            if answer.status == 429:
                wait = _retry_after(answer.headers)
                if wait is None:
                    wait = self._backoff(attempt)
                self.budget.pause(wait)
                logger.warning(
                    "Xurrent asked to wait %.0f s (429) for the account %s.", wait, self.account
                )
                # A yielding purpose never sleeps in a call; its caller says Xurrent paused
                # every worker (the database's pause) and waits in its own way.
                if self.yielding or time.monotonic() + wait > deadline:
                    raise XurrentError(
                        "rate_limited",
                        f"Rate limited by Xurrent until {_at(wait):%H:%M:%S} UTC (429): "
                        "this node's calls wait until then.",
                        status=429,
                        retry_at=_at(wait),
                    )
                attempt += 1
                continue
            if answer.status >= 500:
                error = XurrentError(
                    "server_error",
                    f"Xurrent answered with a server error ({answer.status}) at "
                    f"{_utc_clock()}; it is usually passing.",
                    status=answer.status,
                    uncertain=not repeatable,
                )
                if not repeatable:
                    raise error
                self._pause_before_retry(attempt, deadline, error)
                attempt += 1
                continue
            return self._checked(answer, what)

    def _backoff(self, attempt: int) -> float:
        return min(self.retry_base * (2**attempt), self.retry_max)

    def _pause_before_retry(self, attempt: int, deadline: float, error: XurrentError) -> None:
        delay = self._backoff(attempt)
        if time.monotonic() + delay > deadline:
            raise error
        logger.warning("%s Trying again in %.1f s.", error.message, delay)
        self.sleep(delay)

    def _wait_for_budget(self, deadline: float) -> None:
        self.budget.spend(
            self.purpose,
            patience=deadline - time.monotonic(),
            sleep=self.sleep,
            yielding=self.yielding,
        )

    @sensitive_variables("headers")
    def _send(self, method, url, params, json_body, deadline) -> _Answer:
        import httpx

        try:
            target, pin_headers, extensions = pinned_target(url)
        except NodeError as error:
            raise self._guard_error(error) from None
        headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Authorization": f"Bearer {self._token}",
            "X-Xurrent-Account": self.account,
            "X-4me-Source": self.source,
            **pin_headers,
        }
        left = max(deadline - time.monotonic(), 0.1)
        timeout = httpx.Timeout(min(self.read_timeout, left), connect=min(CONNECT_TIMEOUT, left))
        client = pooled_client(pin_headers.get("Host") or urlsplit(url).netloc)
        try:
            with client.stream(
                method,
                target,
                params=params or None,
                json=json_body,
                headers=headers,
                extensions=extensions,
                timeout=timeout,
            ) as response:
                raw = self._read_capped(response, deadline)
                status, answer_headers, links = (
                    response.status_code,
                    response.headers,
                    response.links,
                )
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise _Transient(self, f"{_reason(error)}", sent=False) from None
        except httpx.TimeoutException:
            raise _Transient(self, "no answer in time", sent=True) from None
        except (httpx.TransportError, UnicodeError) as error:
            raise _Transient(self, _reason(error), sent=True) from None
        except httpx.InvalidURL:
            raise XurrentError(
                "unreachable", f"Could not reach {self.base_url}: the URL is not valid."
            ) from None
        answer = _Answer(status, answer_headers, None, links)
        self._note_answer(answer_headers)
        if 300 <= status < 400:
            raise XurrentError(
                "bad_answer",
                f"{self.base_url} answered with a redirect ({status}): enter the API URL "
                "exactly, such as https://api.xurrent.com/v1.",
                status=status,
            )
        answer.body = self._json(raw, status)
        return answer

    def _guard_error(self, error: NodeError) -> XurrentError:
        if error.kind == "blocked":
            host = self._base.hostname
            return XurrentError(
                "unreachable",
                f"Could not reach {self.base_url}: {host} is a private or local network "
                "address, which this node is not allowed to call "
                "(EXALATE_ALLOW_PRIVATE_NETWORKS is off).",
            )
        return XurrentError("unreachable", f"Could not reach {self.base_url}: {error.message}")

    def _read_capped(self, response: httpx.Response, deadline: float) -> bytes:
        import httpx

        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise self._bad_answer("the answer is far too large", response.status_code)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the answer took too long")
            chunks.append(chunk)
        return b"".join(chunks)

    def _json(self, raw: bytes, status: int) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeError):
            if status >= 500:
                return None  # a proxy's error page: the status says enough
            raise self._bad_answer(f"the answer is not JSON (HTTP {status})", status) from None

    def _note_answer(self, headers: httpx.Headers) -> None:
        reset = _int_header(headers, "X-RateLimit-Reset")
        reset_in = None
        reset_at = None
        if reset is not None:
            # Epoch seconds; some gateways send seconds from now instead.
            if reset > 1_000_000_000:
                reset_at = datetime.fromtimestamp(reset, UTC)
                reset_in = reset - time.time()
            else:
                reset_at = _at(reset)
                reset_in = float(reset)
        remaining = _int_header(headers, "X-RateLimit-Remaining")
        self.last_answer = AnswerInfo(
            date=_http_date(headers.get("Date")),
            rate_limit=_int_header(headers, "X-RateLimit-Limit"),
            rate_remaining=remaining,
            rate_reset=reset_at,
        )
        self.budget.observe(remaining, reset_in)

    # --- what a 4xx means ----------------------------------------------------------------------

    def _checked(self, answer: _Answer, what: str) -> _Answer:
        status = answer.status
        if status < 400:
            return answer
        said = _message(answer.body)
        detail = f"{status}: {said}" if said else str(status)
        if status in (401, 403, 404) and "account" in said.lower():
            raise XurrentError(
                "unknown_account",
                f"Xurrent does not know the account {self.account!r} ({detail}): check the "
                "account id in the settings.",
                status=status,
            )
        if status == 401:
            raise XurrentError(
                "bad_token",
                f"The API token was refused ({detail}): set a valid personal access token "
                "of the account in the settings.",
                status=status,
            )
        if status == 403:
            raise XurrentError(
                "bad_token",
                f"The API token is not allowed to do this ({detail}): give its person the "
                "roles the sync needs in Xurrent.",
                status=status,
            )
        if status == 404:
            raise XurrentError(
                "not_found", f"Not found in Xurrent: {what or 'the address'} (404).", status=status
            )
        errors = _errors(answer.body)
        if status == 422 or errors:
            text = "; ".join(errors) if errors else said or "no reason given"
            message = f"Validation failed: {text} ({status})."
        else:
            message = f"Xurrent refused the call ({detail})."
        raise XurrentError("validation", message, status=status, errors=errors)


class _Transient(Exception):
    """A call that got no answer; `sent` when the request may have reached Xurrent."""

    def __init__(self, client: XurrentClient, reason: str, *, sent: bool):
        self.client = client
        self.reason = reason
        self.sent = sent

    def error(self, uncertain: bool = False) -> XurrentError:
        return XurrentError(
            "unreachable",
            f"Could not reach {self.client.base_url}: {self.reason}.",
            uncertain=uncertain,
        )


def _id(request_id: int | str) -> int:
    """A record id fit for a path: a positive whole number, nothing else."""
    text = str(request_id).strip()
    if isinstance(request_id, bool) or not text.isdigit() or int(text) < 1:
        raise XurrentError("validation", f"{request_id!r} is not an Xurrent record id.")
    return int(text)


def _page_size(per_page: int) -> str:
    if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= PER_PAGE:
        raise XurrentError("validation", f"A page holds 1 to {PER_PAGE} records.")
    return str(per_page)


def _reason(error: Exception) -> str:
    text = str(error).strip()
    return text or type(error).__name__


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    try:
        return int(headers.get(name, "").strip())
    except ValueError:
        return None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        return None


def _retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After in seconds (it may be a number of seconds or an HTTP date)."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        moment = _http_date(value)
        if moment is None:
            return None
        return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        message = body.get("message") or body.get("error")
        if isinstance(message, str):
            return message.strip()[:300]
    return ""


def _errors(body: Any) -> list[str]:
    """Xurrent's validation errors, as sentences: `[["subject", "can't be blank"]]`, plain
    strings, or a {field: [messages]} object."""
    if not isinstance(body, dict):
        return []
    raw = body.get("errors")
    found: list[str] = []
    if isinstance(raw, dict):
        for name, messages in raw.items():
            for text in messages if isinstance(messages, list) else [messages]:
                found.append(f"{name} {text}")
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, list | tuple):
                found.append(" ".join(str(part) for part in item))
            elif isinstance(item, dict):
                found.append(" ".join(str(value) for value in item.values()))
            else:
                found.append(str(item))
    return [text.strip()[:300] for text in found[:20] if str(text).strip()]
