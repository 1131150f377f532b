"""Running both scripts on the samples of the rules page (Test run, and every AI draft
before it is shown). Nothing is stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync.sandbox import Outcome, run_incoming, run_outgoing


@dataclass
class SampleRun:
    """What each script did with the samples, or why it was not run."""

    outgoing: Outcome | None
    incoming: Outcome | None
    outgoing_skipped: str = ""
    incoming_skipped: str = ""
    first_sync: bool = False
    # A real request of this node's account the run used instead of the sample request
    # (the rules page's test run "on request"): its id, its JSON as the scripts got it and
    # its page in Xurrent.
    request_id: int | None = None
    request_json: str = ""
    request_url: str = ""

    @property
    def failed(self) -> bool:
        return any(o is not None and not o.ok for o in (self.outgoing, self.incoming))


def run_samples(
    outgoing: str | None,
    incoming: str | None,
    sample_request: dict[str, Any] | None,
    sample_replica: dict[str, Any] | None,
    *,
    first_sync: bool = False,
    request_problem: str = "",
) -> SampleRun:
    """Run the scripts on the samples. A script given as None does not compile, a sample
    given as None is not valid: the run says so instead of running it. `request_problem`
    says why the real request asked for in place of the sample request could not be had:
    the scripts that need it are not run."""
    run = SampleRun(outgoing=None, incoming=None, first_sync=first_sync)
    if outgoing is None:
        run.outgoing_skipped = "The outgoing script does not compile: see the error below it."
    elif request_problem:
        run.outgoing_skipped = request_problem
    elif sample_request is None:
        run.outgoing_skipped = "The sample request is not valid: see the error below it."
    else:
        run.outgoing = run_outgoing(outgoing, sample_request)

    if incoming is None:
        run.incoming_skipped = "The incoming script does not compile: see the error below it."
    elif sample_replica is None:
        run.incoming_skipped = "The sample replica is not valid: see the error below it."
    elif request_problem and not first_sync:
        run.incoming_skipped = request_problem
    elif sample_request is None and not first_sync:
        run.incoming_skipped = "The sample request is not valid: see the error below it."
    else:
        local = None if first_sync else sample_request
        run.incoming = run_incoming(incoming, sample_replica, local)
    return run
