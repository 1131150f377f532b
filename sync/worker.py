"""The sandbox worker: runs one sync rule script and prints the outcome as JSON.

Started by `sync.sandbox` as `python -m sync.worker` with the job
on stdin. It limits itself before the script runs: a timer that interrupts the script,
CPU seconds (the kernel stops the process), memory and file size. The server kills it
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


def limit_this_process() -> None:
    try:
        import resource
    except ImportError:  # not a POSIX system: the server's hard kill still applies
        return
    cpu = math.ceil(TIME_LIMIT) + 1
    for limit, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT)),
        (resource.RLIMIT_FSIZE, (0, 0)),
    ):
        with contextlib.suppress(ValueError, OSError):  # a lower limit is already set
            resource.setrlimit(limit, value)
    # Interrupt the script when its time is up, and again every 50 ms in case it
    # swallows the interruption with a bare `except:`.
    signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT, 0.05)


def main() -> int:
    job = json.load(sys.stdin)
    direction = job.get("direction") if isinstance(job, dict) else None
    if direction not in DIRECTIONS or not isinstance(job.get("source"), str):
        answer = {"ok": False, "problems": [Problem(None, "Bad sandbox job.").as_dict()]}
    else:
        limit_this_process()
        try:
            answer = execute(direction, job["source"], job)
        except ScriptTimeout:
            message = f"The script ran longer than {TIME_LIMIT:g} second and was stopped."
            answer = {"ok": False, "problems": [Problem(None, message).as_dict()]}
        except MemoryError:
            message = "The script used more memory than a sync rule may."
            answer = {"ok": False, "problems": [Problem(None, message).as_dict()]}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    sys.stdout.write(json.dumps(answer, ensure_ascii=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
