"""The sync queue's part of each `run_worker` round.

Take the webhook hints, poll Xurrent when due, then produce events for dirty twins, send
due events, apply the other side's events, and send their results back. A problem with
one step (Xurrent down, a peer unreachable) is recorded and leaves the other steps
working; a database or cache outage is left to `run_until_stopped`, which waits it out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings

from exalate_site.resilience import unavailable_dependency
from nodes.models import end_request, start_request
from sync.models import ErrorKind, ErrorPlace, PollState
from sync.sandbox import use_persistent_sandbox
from sync.services.apply import apply_inbound
from sync.services.errors import record_error, resolve_errors
from sync.services.gateway import GatewayError, NotConfigured, Purpose, gateway_ready, get_gateway
from sync.services.parallel import beside
from sync.services.produce import produce_changes
from sync.services.pull import pull_round
from sync.services.scope import consume_webhook_hints, poll_xurrent, run_waiting_bulk_exalates
from sync.services.send import send_acks, send_events

logger = logging.getLogger(__name__)


@dataclass
class RoundReport:
    hints: int = 0
    polled: int = 0
    produced: int = 0
    sent: int = 0
    applied: int = 0
    acks: int = 0
    bulk: int = 0
    pulled: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        work = (self.produced, self.sent, self.applied, self.acks, self.hints, self.bulk)
        work += (self.pulled,)
        return any(work)


# Twins (and events) a step takes per round. Each round costs a dozen queries even when a
# step has little to do, so a bulk exalate's thousands of twins go faster in larger
# batches (bench/sync_bulk.py measures it): 1,000 requests took 6.1-6.8 s in batches of
# 100 against 7.1-7.8 s in batches of 50; batches of 200 were no faster.
BATCH_SIZE = 100
# A burst's first events go out sooner: after a round that produced less than it could
# (nothing was waiting), the next takes FIRST_PRODUCED twins, then twice as many each
# round, up to the batch size. The other side applies the first ones while this side
# produces the rest: a bulk exalate's first 100 took half a second to produce before
# any went out, the first 20 a tenth of one.
FIRST_PRODUCED = 20


@dataclass
class _Produced:
    """How many twins the next round produces (this process's rounds, one at a time)."""

    limit: int = FIRST_PRODUCED

    def next_limit(self, batch_size: int) -> int:
        return min(self.limit, batch_size)

    def took(self, count: int, limit: int, batch_size: int) -> None:
        self.limit = min(limit * 2, batch_size) if count >= limit else FIRST_PRODUCED


_produced = _Produced()


def run_sync_round(*, batch_size: int = BATCH_SIZE, poll_every: float | None = None) -> RoundReport:
    """One round of the sync queue. Scripts run in a long-lived sandbox worker; the
    General Settings are read once for the round."""
    # A sandbox worker for each thread that may run a script (SYNC_THREADS of them).
    use_persistent_sandbox(workers=settings.SYNC_THREADS)
    start_request()
    try:
        return _round(batch_size, poll_every)
    finally:
        end_request()


def _round(batch_size: int, poll_every: float | None) -> RoundReport:
    report = RoundReport()
    every = settings.XURRENT_POLL_SECONDS if poll_every is None else poll_every
    # Xurrent asked to wait (a 429's Retry-After): only the calls between nodes go on.
    ready = gateway_ready() and not PollState.account_paused()
    if ready:
        # Each step names its purpose: its share of the account's rate budget.
        gateway = get_gateway(Purpose.POLL)
        report.hints = _step(report, "hints", consume_webhook_hints) or 0
        report.polled = _step(report, "poll", lambda: _poll(every, gateway)) or 0
        bulk = get_gateway(Purpose.BULK)
        report.bulk = _step(report, "bulk", lambda: run_waiting_bulk_exalates(gateway=bulk)) or 0
    # The events produced so far go out while the next ones are produced, and the results
    # applied so far while the next ones are applied: the other node's answers are waited
    # for beside the work on this side. Each claims its rows as a second worker would.
    sending = beside(lambda: _step(report, "send", lambda: send_events(limit=batch_size)))
    if ready:
        # Each thread makes its own client for producing and applying.
        limit = _produced.next_limit(batch_size)
        produced = _step(report, "produce", lambda: produce_changes(limit=limit))
        report.produced = produced.attempted if produced else 0
        _produced.took(report.produced, limit, batch_size)
    sent = sending.result()
    report.sent = sent.attempted if sent else 0
    # A private node pulls what waits for it; at once when it just sent something.
    report.pulled = _step(report, "pull", lambda: pull_round(sent=bool(sent and sent.sent))) or 0
    acking = beside(lambda: _step(report, "acks", lambda: send_acks(limit=batch_size * 2)))
    if ready:
        applied = _step(report, "apply", lambda: apply_inbound(limit=batch_size))
        report.applied = applied.attempted + applied.superseded if applied else 0
    report.acks = acking.result() or 0
    return report


def sync_worker_task() -> bool:
    """`run_worker`'s hook: one round; True when there was work (go again at once)."""
    return run_sync_round().busy


def _poll(every: float, gateway) -> int:
    try:
        seen = poll_xurrent(every=every, gateway=gateway)
    except (GatewayError, NotConfigured) as exc:
        record_error(
            connection=None,
            place=ErrorPlace.POLL,
            kind=ErrorKind.NETWORK
            if getattr(exc, "kind", "") == "unreachable"
            else ErrorKind.XURRENT,
            message=f"Polling Xurrent failed; tried again in {every:g} s: {exc}",
        )
        return 0
    resolve_errors(place=ErrorPlace.POLL, connection=None)
    return seen


_last_logged: dict[str, float] = {}


def _step(report: RoundReport, name: str, step):
    """Run one step; an unexpected failure is logged (once a minute) and the round goes on.
    Database and cache outages go up to the worker's loop, which waits them out."""
    try:
        return step()
    except Exception as exc:
        if unavailable_dependency(exc) is not None:
            raise
        report.problems.append(f"{name}: {exc}")
        now = time.monotonic()
        if now - _last_logged.get(name, 0.0) > 60:
            _last_logged[name] = now
            logger.exception("Sync step %s failed", name)
        return None
