"""HTTP handling: the `/v1` API, the control endpoints under `/_sim/`, and the web page.

One `Simulator` holds the state (store, rate budget, faults, counters, webhooks); the
request handler only parses, checks and routes. Nothing here imports the product.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter, deque
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from xurrent_sim import page
from xurrent_sim.store import (
    TOKEN_PERSON_ID as TOKEN_PERSON,
)
from xurrent_sim.store import (
    BadQuery,
    Clock,
    NotFound,
    Store,
    ValidationFailed,
    iso,
    page_of,
    parse_time,
)
from xurrent_sim.webhooks import WebhookSender

HOUR = 3600
FAULT_KINDS = {
    "error",  # answer `status` (default 500); with "store": true the write happens first
    "timeout",  # sleep `delay` seconds, then answer; with "store": true (default) the write happens
    "disconnect",  # close the connection without an answer; "store" as for timeout
    "rate_limit",  # answer 429 with Retry-After `retry_after`
    "webhook_drop",  # the event's webhooks are lost
    "webhook_duplicate",  # the event's webhooks are sent twice
    "webhook_reorder",  # hold `count` events, then send them in reverse order
    "webhook_early",  # the webhooks are delivered before the write is answered
}
API_FAULTS = {"error", "timeout", "disconnect", "rate_limit"}


@dataclass(eq=False)  # faults are told apart by identity: two may have equal fields
class Fault:
    kind: str
    count: int = 1
    status: int = 500
    store: bool | None = None
    delay: float = 30.0
    retry_after: int = 1
    method: str | None = None  # e.g. "POST"; None: any method
    path: str | None = None  # a regular expression searched in the path; None: any path

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not (self.path and not re.search(self.path, path))


class RateBudget:
    """Calls per token per hour (a fixed window that starts with the first call), and
    optionally a burst limit: at most `burst` calls in any 2 seconds (0: no burst limit)."""

    BURST_SECONDS = 2.0

    def __init__(self, limit: int, clock: Clock, burst: int = 0):
        self.limit = limit
        self.burst = burst
        self.clock = clock
        self.window_start = 0.0
        self.used = 0
        self.recent: deque[float] = deque()
        self.lock = threading.Lock()

    def take(self) -> tuple[bool, dict[str, str], int]:
        """(allowed, headers, seconds to wait when not allowed)."""
        with self.lock:
            now = self.clock.now()
            if now >= self.window_start + HOUR:
                self.window_start, self.used = now, 0
            wait = self._burst_wait(time.monotonic())
            allowed = self.used < self.limit and wait == 0
            if allowed:
                self.used += 1
                self.recent.append(time.monotonic())
            reset = int(self.window_start + HOUR)
            headers = {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(max(self.limit - self.used, 0)),
                "X-RateLimit-Reset": str(reset),
            }
            if self.used >= self.limit and not allowed:
                wait = max(wait, reset - int(now))
            return allowed, headers, max(wait, 1)

    def _burst_wait(self, now: float) -> int:
        if not self.burst:
            return 0
        while self.recent and self.recent[0] <= now - self.BURST_SECONDS:
            self.recent.popleft()
        if len(self.recent) < self.burst:
            return 0
        return math.ceil(self.recent[0] + self.BURST_SECONDS - now)

    def reset(self) -> None:
        with self.lock:
            self.window_start, self.used = 0.0, 0
            self.recent.clear()


class Simulator:
    """Everything one simulated account knows, shared by the handler threads."""

    def __init__(
        self,
        account: str,
        token: str,
        webhooks: list[str] | None = None,
        data_file: Path | None = None,
        rate_limit: int = 3600,
        burst_limit: int = 0,
        webhook_key: bytes | None = None,
        webhook_audience: str = "xurrent-sim",
        webhook_retries: int = 4,
        webhook_backoff: float = 0.5,
        first_id: int = 1,
        log=print,
    ):
        self.account = account
        self.token = token
        self.clock = Clock()
        self.store = Store(account, data_file, self.clock, first_id=first_id)
        self.budget = RateBudget(rate_limit, self.clock, burst_limit)
        self.base_url = ""  # set once the server is bound
        self.log = log
        self.sender = WebhookSender(
            webhooks or [],
            account,
            lambda: self.base_url + "/v1",
            private_key=webhook_key,
            audience=webhook_audience,
            retries=webhook_retries,
            backoff=webhook_backoff,
            log=log,
            now=self.clock.now,
        )
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.held: list = []  # deliveries held back by a webhook_reorder fault
        self.held_events = 0
        self.stats = Counter()
        self.http_log = True

    # ---- faults

    def add_faults(self, specs: list[dict]) -> list[Fault]:
        faults = []
        for spec in specs:
            if not isinstance(spec, dict) or spec.get("kind") not in FAULT_KINDS:
                raise ValueError(f"each fault needs a kind among {sorted(FAULT_KINDS)}")
            known = set(Fault.__dataclass_fields__)
            if set(spec) - known:
                raise ValueError(f"unknown fault fields: {sorted(set(spec) - known)}")
            fault = Fault(**spec)
            if fault.count < 1:
                raise ValueError("count must be at least 1")
            faults.append(fault)
        with self.lock:
            self.faults.extend(faults)
        return faults

    def take_fault(self, kinds: set[str], method: str = "", path: str = "") -> Fault | None:
        """The first pending fault of these kinds that fits the call; uses one of its count."""
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds and (
                    fault.kind not in API_FAULTS or fault.matches(method, path)
                ):
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # ---- counters

    def count(self, *keys: str) -> None:
        with self.lock:
            for key in keys:
                self.stats[key] += 1

    def stats_answer(self) -> dict:
        with self.lock:
            stats = dict(self.stats)
        grouped: dict[str, dict[str, int]] = {}
        for key, value in stats.items():
            group, _, name = key.partition(":")
            grouped.setdefault(group, {})[name] = value
        webhooks = self.sender.summary()["counts"]
        return {
            "calls": grouped.get("calls", {}),
            "writes": grouped.get("writes", {}),
            "endpoints": grouped.get("endpoint", {}),
            "write_endpoints": grouped.get("write", {}),
            "statuses": grouped.get("status", {}),
            "page_writes": grouped.get("page", {}).get("writes", 0),
            "rate_limited": grouped.get("limited", {}).get("calls", 0),
            "webhooks": webhooks,
        }

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.held.clear()
            self.held_events = 0
            self.stats.clear()
        self.store.reset()
        self.budget.reset()
        self.clock.offset = 0.0
        self.sender.wait_idle(timeout=5)
        self.sender.clear()

    # ---- webhooks

    def emit(self, events: list[tuple[str, int, dict]], person: dict, early: bool) -> None:
        """Send the webhooks of a write, applying any webhook fault pending for each event."""
        for event, object_id, payload in events:
            deliveries = self.sender.build(event, object_id, person, payload)
            if not deliveries:
                continue
            fault = self.take_fault({"webhook_drop", "webhook_duplicate", "webhook_reorder"})
            early_now = early or self.take_fault({"webhook_early"}) is not None
            if fault and fault.kind == "webhook_drop":
                for delivery in deliveries:
                    self.sender.drop(delivery)
                continue
            if fault and fault.kind == "webhook_reorder":
                self._hold(deliveries, fault)
                continue
            copies = 2 if fault and fault.kind == "webhook_duplicate" else 1
            for delivery in deliveries:
                for _ in range(copies):
                    if early_now:
                        self.sender.send_now(_copy(delivery))
                    else:
                        self.sender.enqueue(_copy(delivery))

    def _hold(self, deliveries: list, fault: Fault) -> None:
        with self.lock:
            self.held.append(deliveries)
            # the fault's count went down by one for this event; release when it is used up
            release = fault not in self.faults
            batch = list(reversed(self.held)) if release else []
            if release:
                self.held.clear()
        for held in batch:
            for delivery in held:
                self.sender.enqueue(delivery)

    def person(self) -> dict:
        """The person behind the API token."""
        return self.store.person(TOKEN_PERSON)  # type: ignore[return-value]


def _copy(delivery):
    from dataclasses import replace

    return replace(delivery, sent_at=[])


class Handler(BaseHTTPRequestHandler):
    server_version = "xurrent-sim/1"
    protocol_version = "HTTP/1.1"
    sim: Simulator  # set on the subclass made by make_server

    # ---- plumbing

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and the
        # client's delayed ACK hold every keep-alive answer back by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        if self.sim.http_log:
            self.sim.log(f"{self.address_string()} {format % args}")

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the simulated clock: a client takes Xurrent's time from it.
        return email.utils.formatdate(timestamp or self.sim.clock.now(), usegmt=True)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if self.path.startswith("/v1"):
            self.sim.count(f"status:{status}")

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None, **extra):
        self._json(status, {"message": message, **extra}, headers)

    def do_GET(self) -> None:  # noqa: N802 - stdlib's name
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    def do_PATCH(self) -> None:  # noqa: N802
        self._route()

    def do_PUT(self) -> None:  # noqa: N802
        self._route()

    def do_DELETE(self) -> None:  # noqa: N802
        self._route()

    def _route(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        try:
            if url.path == "/v1" or url.path.startswith("/v1/"):
                self._api(url)
            elif url.path.startswith("/_sim/"):
                self._control(url)
            else:
                self._page(url)
        except BrokenPipeError:
            pass  # the client gave up (a timeout fault does exactly this)

    # ---- the API

    def _api(self, url: urllib.parse.SplitResult) -> None:
        sim, method = self.sim, self.command
        endpoint = _endpoint(method, url.path)
        sim.count(f"calls:{method}", f"endpoint:{endpoint}")
        # Read the body before any early answer: left unread, it would be taken for the
        # next request on this keep-alive connection.
        body = self._read_body()
        problem = self._authenticate()
        if problem:
            self._error(401, problem)
            return
        fault = sim.take_fault({"rate_limit"}, method, url.path)
        if fault:
            sim.count("limited:calls")
            self._error(429, "Too Many Requests", {"Retry-After": str(fault.retry_after)})
            return
        allowed, limit_headers, wait = sim.budget.take()
        if not allowed:
            sim.count("limited:calls")
            headers = {**limit_headers, "Retry-After": str(wait)}
            self._error(429, "Too Many Requests", headers)
            return
        fault = sim.take_fault({"error", "timeout", "disconnect"}, method, url.path)
        store = fault is None or (fault.store if fault.store is not None else fault.kind != "error")
        status, data, headers, events = (0, None, {}, [])
        if store:
            status, data, headers, events = self._dispatch(method, url, body)
            if events:
                sim.count(f"writes:{method}", f"write:{endpoint}")
                sim.emit(events, sim.person(), early=False)
        headers = {**limit_headers, **headers}
        if fault and fault.kind == "error":
            self._error(fault.status, _reason(fault.status), limit_headers)
            return
        if fault and fault.kind == "timeout":
            time.sleep(fault.delay)
            if not store:
                self._error(504, "Gateway Timeout", limit_headers)
                return
        if fault and fault.kind == "disconnect":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if data is None:
            self._send(status, b"", headers=headers)
        else:
            self._json(status, data, headers)

    def _authenticate(self) -> str | None:
        sim = self.sim
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not _same(token.strip(), sim.token):
            return "Unauthorized: the access token is missing or not valid"
        account = self.headers.get("X-Xurrent-Account") or self.headers.get("X-4me-Account")
        if not account:
            return "Unauthorized: the X-Xurrent-Account header is missing"
        if account != sim.account:
            return f"Unauthorized: account '{account}' is not known to this access token"
        return None

    def _dispatch(
        self, method: str, url: urllib.parse.SplitResult, raw: bytes
    ) -> tuple[int, Any, dict[str, str], list]:
        """Run one API call → (status, JSON data or None, headers, webhook events)."""
        store = self.sim.store
        params = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        parts = url.path.rstrip("/").split("/")[2:]  # after "", "v1"
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return 400, {"message": "The body is not valid JSON"}, {}, []
        person_id = TOKEN_PERSON
        try:
            match method, parts:
                case "GET", ["requests"]:
                    return self._list(store.list_requests(params), params)
                case "POST", ["requests"]:
                    source = self.headers.get("X-4me-Source") or self.headers.get(
                        "X-Xurrent-Source"
                    )
                    shown, change = store.create_request(body, person_id, source)
                    return 201, shown, {}, change.events
                case "GET", ["requests", rid] if rid.isdigit():
                    return 200, store.get_request(int(rid)), {}, []
                case (("PATCH" | "PUT"), ["requests", rid]) if rid.isdigit():
                    shown, change = store.update_request(int(rid), body, person_id)
                    return 200, shown, {}, change.events
                case "GET", ["requests", rid, "notes"] if rid.isdigit():
                    return self._list(store.list_notes(int(rid), params), params)
                case "POST", ["requests", rid, "notes"] if rid.isdigit():
                    note, change = store.add_note(int(rid), body, person_id)
                    return 201, note, {}, change.events
                case "GET", ["me"]:
                    me = store.person(TOKEN_PERSON) or {}
                    return 200, {**me, "account": self._account()}, {}, []
                case "GET", ["account"]:
                    return 200, self._account(), {}, []
                case "GET", ["teams"]:
                    return self._list(store.teams(), params)
                case "GET", ["people"]:
                    return self._list(store.people(), params)
                case _, (["requests"] | ["requests", _] | ["requests", _, "notes"]):
                    if parts[1:2] and not parts[1].isdigit():
                        return 404, {"message": "Not Found"}, {}, []
                    return 405, {"message": f"{method} is not allowed here"}, {}, []
                case _:
                    return 404, {"message": "Not Found"}, {}, []
        except NotFound as error:
            return 404, {"message": str(error)}, {}, []
        except ValidationFailed as error:
            return 422, {"message": error.message, "errors": error.errors}, {}, []
        except BadQuery as error:
            return 400, {"message": str(error)}, {}, []

    def _account(self) -> dict:
        return {"id": self.sim.account, "name": self.sim.account.replace("-", " ").title()}

    def _list(self, records: list[dict], params: list[tuple[str, str]]):
        """One page of a list, with Xurrent's pagination headers."""
        total = len(records)
        page_number, per_page, pages = page_of(params, total)
        start = (page_number - 1) * per_page
        chosen = records[start : start + per_page]
        headers = {
            "X-Pagination-Per-Page": str(per_page),
            "X-Pagination-Current-Page": str(page_number),
            "X-Pagination-Total-Pages": str(pages),
            "X-Pagination-Total-Entries": str(total),
            "Link": self._links(params, page_number, per_page, pages),
        }
        return 200, chosen, headers, []

    def _links(self, params: list[tuple[str, str]], current: int, per_page: int, pages: int) -> str:
        base = f"http://{self.headers.get('Host') or self.sim.base_url[7:]}"
        path = urllib.parse.urlsplit(self.path).path
        kept = [(k, v) for k, v in params if k not in ("page", "per_page")]

        def link(number: int, rel: str) -> str:
            query = kept + [("page", str(number)), ("per_page", str(per_page))]
            encoded = "&".join(
                f"{urllib.parse.quote(k, safe='!')}={urllib.parse.quote(v, safe=',:!')}"
                for k, v in query
            )
            return f'<{base}{path}?{encoded}>; rel="{rel}"'

        links = [link(1, "first")]
        if current > 1:
            links.append(link(min(current - 1, pages), "prev"))
        if current < pages:
            links.append(link(current + 1, "next"))
        links.append(link(pages, "last"))
        return ", ".join(links)

    # ---- /_sim/ control endpoints (no auth: a local test server)

    def _control(self, url: urllib.parse.SplitResult) -> None:
        sim, method = self.sim, self.command
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            self._error(400, "The body is not valid JSON")
            return
        name = url.path[len("/_sim/") :].rstrip("/")
        if (method, name) == ("GET", "stats"):
            self._json(200, sim.stats_answer())
        elif (method, name) == ("POST", "reset"):
            sim.reset()
            self._json(200, {"reset": True})
        elif (method, name) == ("GET", "faults"):
            with sim.lock:
                self._json(200, [asdict(f) for f in sim.faults])
        elif (method, name) == ("POST", "faults"):
            specs = body if isinstance(body, list) else body.get("faults", [body])
            try:
                added = sim.add_faults(specs)
            except (TypeError, ValueError) as error:
                self._error(400, str(error))
                return
            self._json(201, [asdict(f) for f in added])
        elif (method, name) == ("DELETE", "faults"):
            with sim.lock:
                sim.faults.clear()
            self._json(200, [])
        elif name == "clock" and method in ("GET", "POST"):
            if method == "POST":
                problem = _move_clock(sim.clock, body)
                if problem:
                    self._error(400, problem)
                    return
            self._json(200, {"now": iso(sim.clock.now()), "offset": sim.clock.offset})
        elif (method, name) == ("GET", "webhooks"):
            self._json(200, sim.sender.summary())
        elif (method, name) == ("POST", "webhooks/wait"):
            idle = sim.sender.wait_idle(float(body.get("timeout", 10)))
            self._json(200 if idle else 504, {"idle": idle})
        else:
            self._error(404, "Not Found")

    # ---- the web page (acts as the account owner; forms post to the simulator itself)

    def _page(self, url: urllib.parse.SplitResult) -> None:
        sim, method = self.sim, self.command
        raw = self._read_body().decode("utf-8", errors="replace")
        form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True)) if method == "POST" else {}
        try:
            answer = page.handle(sim, method, url.path, url.query, form)
        except NotFound as error:
            self._send(404, page.not_found(str(error)).encode(), "text/html; charset=utf-8")
            return
        if answer.redirect:
            self._send(303, b"", headers={"Location": answer.redirect})
        else:
            self._send(answer.status, answer.html.encode(), "text/html; charset=utf-8")


def _move_clock(clock: Clock, body: dict) -> str | None:
    try:
        if "advance" in body:
            clock.offset += float(body["advance"])
        elif "offset" in body:
            clock.offset = float(body["offset"])
        elif "now" in body:
            clock.offset = parse_time(str(body["now"])) - time.time()
        else:
            return "give one of advance (seconds), offset (seconds) or now (ISO 8601)"
    except (TypeError, ValueError):
        return "the clock value is not a number or an ISO 8601 time"
    return None


def _endpoint(method: str, path: str) -> str:
    """`PATCH /v1/requests/12` → `PATCH /v1/requests/:id` (for the counters)."""
    return f"{method} " + re.sub(r"/\d+(?=/|$)", "/:id", path.rstrip("/"))


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _same(given: str, expected: str) -> bool:
    import hmac

    return hmac.compare_digest(given.encode(), expected.encode())


def make_server(sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"sim": sim})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    bound_host, bound_port = server.server_address[:2]
    sim.base_url = f"http://{bound_host}:{bound_port}"
    return server
