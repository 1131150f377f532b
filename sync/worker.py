"""The sandbox worker: runs one sync rule script and prints the outcome as JSON.

Started by `sync.sandbox` as `python -m sync.worker` with the job on stdin, or as
`python -m sync.worker --serve` to run job after job (one JSON line each way) for the
sync engine. It limits itself before the script runs: a timer that interrupts the
script, CPU seconds (the kernel stops the process), memory and file size. The server kills it
too if it does not answer in time, so nothing here can keep running.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys

from sync.sandbox import (
    DIRECTIONS,
    MEMORY_LIMIT,
    TIME_LIMIT,
    Problem,
    ScriptTimeout,
    execute,
    filename_for,
)

SCRIPT_FILES = frozenset(filename_for(d) for d in DIRECTIONS)


def _interrupt(signum, frame) -> None:
    # Only a running script is interrupted: once it has finished, the worker's own code
    # (writing the answer) must not be cut short.
    while frame is not None:
        if frame.f_code.co_filename in SCRIPT_FILES:
            raise ScriptTimeout()
        frame = frame.f_back


CPU_ALLOWANCE = math.ceil(TIME_LIMIT) + 1  # CPU seconds per job


def limit_this_process(*, cpu_used: float = 0.0) -> None:
    """Memory, file size and CPU limits; `cpu_used` is what a long-lived worker has
    spent on earlier jobs, so each job still gets only its own allowance."""
    try:
        import resource
    except ImportError:  # not a POSIX system: the server's hard kill still applies
        return
    cpu = math.ceil(cpu_used) + CPU_ALLOWANCE
    for limit, value in (
        (resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT)),
        (resource.RLIMIT_FSIZE, (0, 0)),
    ):
        with contextlib.suppress(ValueError, OSError):  # a lower limit is already set
            resource.setrlimit(limit, value)
    _limit_cpu(resource, cpu)


def _limit_cpu(resource, soft: int) -> None:
    """The kernel stops the process (SIGXCPU) past `soft` CPU seconds in all."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _cpu_used() -> float:
    try:
        import resource
    except ImportError:
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_timer() -> None:
    # Interrupt the script when its time is up, and again every 50 ms in case it
    # swallows the interruption with a bare `except:`.
    signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT, 0.05)


def run_job(job) -> dict:
    direction = job.get("direction") if isinstance(job, dict) else None
    if direction not in DIRECTIONS or not isinstance(job.get("source"), str):
        return {"ok": False, "problems": [Problem(None, "Bad sandbox job.").as_dict()]}
    start_timer()
    try:
        return execute(direction, job["source"], job)
    except ScriptTimeout:
        message = f"The script ran longer than {TIME_LIMIT:g} second and was stopped."
        return {"ok": False, "problems": [Problem(None, message).as_dict()]}
    except MemoryError:
        message = "The script used more memory than a sync rule may."
        return {"ok": False, "problems": [Problem(None, message).as_dict()]}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main() -> int:
    job = json.load(sys.stdin)
    limit_this_process()
    sys.stdout.write(json.dumps(run_job(job), ensure_ascii=True))
    return 0


def serve() -> int:
    """Long-lived: one JSON job a line on stdin, one JSON answer a line on stdout."""
    limit_this_process()
    for line in sys.stdin:
        try:
            job = json.loads(line)
        except ValueError:
            job = None
        # Each job gets its own CPU allowance on top of what the earlier ones used.
        with contextlib.suppress(ImportError):
            import resource

            _limit_cpu(resource, math.ceil(_cpu_used()) + CPU_ALLOWANCE)
        answer = run_job(job)
        sys.stdout.write(json.dumps(answer, ensure_ascii=True) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main())
