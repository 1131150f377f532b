"""The sandbox sync rules run in.

Two layers. RestrictedPython compiles a script so that it cannot import, touch names or
attributes that start with "_", or reach files, the network or other code (`open`,
`eval`, `getattr` and friends are refused when the script is compiled, and are not
there when it runs). The script then runs in a short-lived worker process
(`sync.worker`) with a timer, CPU, memory and file-size limits and a hard
kill from this side: an endless loop, a huge allocation or a long computation inside
one C call stops the worker, never a thread of this server.

Nothing here imports Django: the worker process loads this module on its own.
"""

from __future__ import annotations

import ast
import atexit
import builtins
import functools
import json
import logging
import operator
import os
import queue
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any

from RestrictedPython import RestrictingNodeTransformer, compile_restricted_exec
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr_raise,
)

from sync.entity import (
    Change,
    Record,
    changes,
    entity_from_request,
    merge_attachments,
    merge_comments,
    ordered,
    reference_notes,
    request_problems,
    to_record,
)

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]

SCRIPT_MAX_LENGTH = 50_000  # characters per script
TIME_LIMIT = 1.0  # seconds a script may run
# Starting the worker (a Python process importing RestrictedPython) takes a few
# hundredths of a second; a busy machine gets generous room before the hard kill.
STARTUP_ALLOWANCE = 4.0
# A worker that is already running needs no start-up time, only room for a busy machine.
RUNNING_ALLOWANCE = 2.0
OUTPUT_LIMIT = 256 * 1024  # bytes of JSON a script may produce (the replica or the entity)
PRINT_LIMIT = 10_000  # characters of print() output kept
MEMORY_LIMIT = 512 * 1024 * 1024  # address space of the worker, bytes

DIRECTIONS = ("outgoing", "incoming")

# Names a script may not use at all. Most are missing at run time anyway; refusing them
# when the script is saved tells the admin at once, with the line.
FORBIDDEN_NAMES = frozenset(
    {
        "open",
        "compile",
        "eval",
        "exec",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "globals",
        "locals",
        "vars",
        "dir",
        "type",
        "input",
        "breakpoint",
        "help",
        "exit",
        "quit",
        "memoryview",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
    }
)

# The builtins a script gets: data types, arithmetic and the usual exceptions.
SAFE_BUILTIN_NAMES = (
    "abs",
    "all",
    "any",
    "bool",
    "chr",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "frozenset",
    "int",
    "isinstance",
    "len",
    "list",
    "map",
    "max",
    "min",
    "ord",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    "ArithmeticError",
    "AttributeError",
    "Exception",
    "IndexError",
    "KeyError",
    "LookupError",
    "NameError",
    "TypeError",
    "ValueError",
    "ZeroDivisionError",
)


# --- problems ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Something wrong with a script, for the admin: where (when known) and what."""

    line: int | None
    message: str
    source_line: str = ""

    def __str__(self) -> str:
        return f"Line {self.line}: {self.message}" if self.line else self.message

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "message": self.message, "source_line": self.source_line}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Problem:
        line = data.get("line")
        return cls(
            line=line if isinstance(line, int) else None,
            message=str(data.get("message") or "The script failed."),
            source_line=str(data.get("source_line") or ""),
        )


class ScriptError(Exception):
    """A script cannot be used; `problems` says why, line by line."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class RulesError(Exception):
    """One or both scripts of a rule set do not compile: `problems[direction]`."""

    def __init__(self, problems: dict[str, list[Problem]]):
        super().__init__("; ".join(f"{d}: {p}" for d, items in problems.items() for p in items))
        self.problems = problems


def _source_line(source: str, line: int | None) -> str:
    if not line:
        return ""
    lines = source.splitlines()
    return lines[line - 1].strip()[:200] if 0 < line <= len(lines) else ""


# --- compiling ------------------------------------------------------------------------------


class RulesPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, tightened for sync rules."""

    def visit_Import(self, node: ast.Import) -> ast.AST:
        self.error(node, "Imports are not allowed: everything a sync rule can use is at hand.")
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        return self.visit_Import(node)  # type: ignore[arg-type]

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.error(node, "Classes are not available in sync rules: use functions and dicts.")
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in FORBIDDEN_NAMES:
            self.error(
                node,
                f'"{node.id}" is not available in sync rules: they cannot read files, '
                "reach the network or run other code.",
            )
        return super().visit_Name(node)


_RP_ERROR = re.compile(r"^Line (\d+|None): (.*)$", re.DOTALL)


def filename_for(direction: str) -> str:
    return f"<{direction} script>"


def compile_script(source: str, direction: str) -> CodeType:
    """The script compiled for the sandbox, or ScriptError with each problem and its line."""
    if len(source) > SCRIPT_MAX_LENGTH:
        raise ScriptError(
            [Problem(None, f"The script is longer than {SCRIPT_MAX_LENGTH:,} characters.")]
        )
    filename = filename_for(direction)
    try:
        with warnings.catch_warnings():
            # Python's own hints ("is" with a literal...) would go to stderr, not the admin.
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename=filename)
            result = compile_restricted_exec(tree, filename=filename, policy=RulesPolicy)
    except SyntaxError as exc:
        # From the parser, or from the compiler (`return` outside a function...).
        raise ScriptError(
            [Problem(exc.lineno, exc.msg, _source_line(source, exc.lineno))]
        ) from None
    except ValueError as exc:  # e.g. a NUL character in the text
        raise ScriptError([Problem(None, str(exc))]) from None
    except (RecursionError, MemoryError):
        raise ScriptError(
            [Problem(None, "The script is nested too deeply to be compiled.")]
        ) from None
    if result.errors:
        problems = []
        for text in dict.fromkeys(result.errors):  # in order, without repeats
            match = _RP_ERROR.match(text)
            line = int(match[1]) if match and match[1] != "None" else None
            message = match[2] if match else text
            problems.append(Problem(line, message, _source_line(source, line)))
        raise ScriptError(sorted(problems, key=lambda p: p.line or 0))
    assert result.code is not None  # noqa: S101 - no errors means RestrictedPython compiled it
    return result.code


@functools.lru_cache(maxsize=32)
def _compiled(source: str, direction: str) -> CodeType:
    """compile_script, kept for the scripts a long-lived worker runs again and again
    (compiled code is immutable; every run still gets a fresh namespace)."""
    return compile_script(source, direction)


def check_script(source: str, direction: str) -> list[Problem]:
    """The problems that keep a script from compiling; empty when it compiles."""
    try:
        compile_script(source, direction)
    except ScriptError as exc:
        return exc.problems
    return []


@dataclass(frozen=True)
class CompiledRules:
    outgoing: CodeType
    incoming: CodeType


def compile_rules(outgoing: str, incoming: str) -> CompiledRules:
    """Both scripts of a rule set compiled, or RulesError with the problems of each."""
    problems = {
        direction: found
        for direction, source in (("outgoing", outgoing), ("incoming", incoming))
        if (found := check_script(source, direction))
    }
    if problems:
        raise RulesError(problems)
    return CompiledRules(
        outgoing=compile_script(outgoing, "outgoing"),
        incoming=compile_script(incoming, "incoming"),
    )


# --- running, in this process (the worker calls this) ---------------------------------------


def _guarded_getattr(obj: Any, name: str) -> Any:
    if isinstance(obj, Record) and not name.startswith("_"):
        return obj.get(name)  # fields, never dict methods: `entity.items` is a field
    return safer_getattr_raise(obj, name)


def _guarded_getitem(obj: Any, key: Any) -> Any:
    return obj[key]


def _guarded_write(obj: Any) -> Any:
    if type(obj) in (Record, dict, list):
        return obj
    raise TypeError(f"A {type(obj).__name__} cannot be changed by a sync rule.")


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "|=": operator.ior,
    "&=": operator.iand,
    "^=": operator.ixor,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
}


def _inplace(op: str, target: Any, value: Any) -> Any:
    return _INPLACE[op](target, value)


def _apply(func: Callable, *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


def _print_collector(sink: list[str]) -> type:
    """RestrictedPython's print hook, writing into `sink` and keeping at most PRINT_LIMIT."""

    kept = [0]  # characters in sink, shared by every collector of the run

    class Collector:
        def __init__(self, _getattr_: Any = None):
            pass

        def write(self, text: str) -> None:
            room = PRINT_LIMIT - kept[0]
            if room <= 0:
                return
            if len(text) >= room:
                text = text[:room] + f"\n… (output cut at {PRINT_LIMIT:,} characters)\n"
                kept[0] = PRINT_LIMIT
            else:
                kept[0] += len(text)
            sink.append(str(text))

        def flush(self) -> None:
            pass

        def __call__(self) -> str:
            return "".join(sink)

        def _call_print(self, *objects: Any, **kwargs: Any) -> None:
            kwargs["file"] = self  # never anywhere else
            print(*objects, **kwargs)

    return Collector


def sandbox_globals(printed: list[str]) -> dict[str, Any]:
    """A fresh namespace for one run: the guards RestrictedPython's code calls."""
    return {
        "__builtins__": {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES},
        "__name__": "sync_rules",
        "_getattr_": _guarded_getattr,
        "_getitem_": _guarded_getitem,
        "_getiter_": iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": _guarded_write,
        "_inplacevar_": _inplace,
        "_apply_": _apply,
        "_print_": _print_collector(printed),
    }


class ScriptTimeout(BaseException):  # noqa: N818 - it is an interruption, not an error
    """Raised into a script that ran out of time."""


def runtime_problem(exc: BaseException, source: str, direction: str) -> Problem:
    """An exception from a script as the admin should read it, at the script's line."""
    line = None
    tb = exc.__traceback__
    filename = filename_for(direction)
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(exc, ScriptTimeout):
        message = f"The script ran longer than {TIME_LIMIT:g} second and was stopped."
    elif isinstance(exc, MemoryError):
        message = "The script used more memory than a sync rule may."
    elif isinstance(exc, RecursionError):
        message = "The script called itself too deeply (RecursionError)."
    else:
        detail = str(exc)[:500]
        message = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return Problem(line, message, _source_line(source, line))


def to_json(value: Any, what: str) -> str:
    """The script's result as JSON, refusing what cannot be sent or is too big."""

    def refuse(obj: Any) -> Any:
        raise TypeError(
            f"{what} holds a {type(obj).__name__}, which cannot be sent: use text, numbers, "
            "True/False, None, lists and dicts."
        )

    try:
        text = json.dumps(value, default=refuse, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        message = str(exc) if isinstance(exc, TypeError) else f"{what} cannot be sent as JSON."
        raise ScriptError([Problem(None, message)]) from None
    if len(text.encode()) > OUTPUT_LIMIT:
        raise ScriptError(
            [Problem(None, f"{what} is larger than the {OUTPUT_LIMIT // 1024} KB limit.")]
        )
    return text


# The helper functions an incoming script can call, by the name it calls them with.
INCOMING_HELPERS: dict[str, Callable[..., Any]] = {
    "merge_comments": merge_comments,
    "merge_attachments": merge_attachments,
}


@dataclass(frozen=True)
class ScriptName:
    """A name a script finds set when it starts (besides the builtins)."""

    name: str
    kind: str  # "record", "flag" or "helper"
    doc: str


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n\n")[0].replace("\n", " ").strip()


# What `execute` gives each direction: the editor's completion, the page's help and the
# AI Assist prompt describe the sandbox from this, so they cannot drift from it.
SCRIPT_NAMES: dict[str, tuple[ScriptName, ...]] = {
    "outgoing": (
        ScriptName("entity", "record", "The local Xurrent request: read its fields."),
        ScriptName("replica", "record", "What the other side receives: set its fields."),
    ),
    "incoming": (
        ScriptName("replica", "record", "What the other side sent: read its fields."),
        ScriptName(
            "entity",
            "record",
            "The local Xurrent request: set its fields. Empty on the first sync.",
        ),
        ScriptName(
            "first_sync", "flag", "True when the request does not exist here yet and is created."
        ),
        ScriptName(
            "previous",
            "record",
            "The replica received before this one (empty on the first sync): compare with "
            "it to apply only what the other side changed.",
        ),
        *(
            ScriptName(name, "helper", _first_line(helper.__doc__))
            for name, helper in INCOMING_HELPERS.items()
        ),
    ),
}


def execute(direction: str, source: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Run one script here and now (no time limit: the worker adds that).

    Outgoing: `data` is {"entity"}; the answer's "result" is the replica.
    Incoming: `data` is {"replica", "entity", "first_sync", "previous"}; "result" is the
    entity after.
    """
    printed: list[str] = []
    try:
        code = _compiled(source, direction)
        namespace = sandbox_globals(printed)
        if direction == "outgoing":
            namespace.update(entity=to_record(data.get("entity") or {}), replica=Record())
            out_name = "replica"
        else:
            namespace.update(
                replica=to_record(data.get("replica") or {}),
                entity=to_record(data.get("entity") or {}),
                first_sync=bool(data.get("first_sync")),
                previous=to_record(data.get("previous") or {}),
                **INCOMING_HELPERS,
            )
            out_name = "entity"
        try:
            exec(code, namespace)  # noqa: S102 - RestrictedPython code in a guarded namespace
        except BaseException as exc:  # noqa: BLE001 - any failure of the script is reported
            raise ScriptError([runtime_problem(exc, source, direction)]) from None
        result = namespace.get(out_name)
        if not isinstance(result, Mapping):
            raise ScriptError(
                [Problem(None, f"`{out_name}` must stay an object (the script replaced it).")]
            )
        text = to_json(result, f"The {out_name}")
    except ScriptError as exc:
        return {
            "ok": False,
            "problems": [p.as_dict() for p in exc.problems],
            "printed": "".join(printed),
        }
    return {"ok": True, "result": json.loads(text), "printed": "".join(printed)}


# --- running in the worker process, from the server ------------------------------------------


@dataclass
class Outcome:
    """What a test run of one script gave."""

    ok: bool
    result: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)
    printed: str = ""
    seconds: float = 0.0
    # Incoming only: the local request before, what changed, and what Xurrent would refuse.
    before: dict[str, Any] | None = None
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Incoming only: how the sync will write what the script set (references by name).
    notes: list[str] = field(default_factory=list)

    @property
    def result_json(self) -> str:
        return json.dumps(ordered(self.result or {}), indent=2, ensure_ascii=False)


def _failed(message: str, seconds: float = 0.0) -> Outcome:
    return Outcome(ok=False, problems=[Problem(None, message)], seconds=seconds)


WORKER_COMMAND = ("-X", "utf8", "-E", "-s", "-m", "sync.worker")


def _run_in_worker(job: dict[str, Any]) -> Outcome:
    sandbox = _persistent.sandbox
    if sandbox is not None:
        return sandbox.run(job)
    return _run_once(job)


def _run_once(job: dict[str, Any]) -> Outcome:
    if not sys.executable:
        return _failed("The sandbox cannot start: this server has no Python executable.")
    started = time.perf_counter()
    try:
        completed = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, *WORKER_COMMAND],
            input=json.dumps(job, ensure_ascii=True),
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=ROOT,
            env={"PATH": os.defpath},
            timeout=TIME_LIMIT + STARTUP_ALLOWANCE,
            check=False,
        )
    except subprocess.TimeoutExpired:
        # subprocess.run has killed and reaped the worker.
        return _failed(
            f"The script ran longer than {TIME_LIMIT:g} second and was stopped.",
            time.perf_counter() - started,
        )
    except OSError:
        logger.exception("The sync rules sandbox could not be started")
        return _failed("The sandbox could not be started. Try again in a moment.")
    return _outcome(completed, time.perf_counter() - started)


def _outcome(completed: subprocess.CompletedProcess, seconds: float) -> Outcome:
    """What the worker process reported, or why it reported nothing."""
    killed_by = -completed.returncode if completed.returncode < 0 else None
    if killed_by in (signal.SIGXCPU, signal.SIGKILL):
        return _failed(
            f"The script ran longer than {TIME_LIMIT:g} second and was stopped.", seconds
        )
    try:
        answer = json.loads(completed.stdout) if completed.returncode == 0 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        logger.warning(
            "The sync rules sandbox ended with code %s: %s",
            completed.returncode,
            completed.stderr[-2000:],
        )
        return _failed("The sandbox stopped unexpectedly while running the script.", seconds)
    printed = str(answer.get("printed") or "")
    if not answer.get("ok"):
        problems = [Problem.from_dict(p) for p in answer.get("problems", [])]
        return Outcome(ok=False, problems=problems, printed=printed, seconds=seconds)
    return Outcome(ok=True, result=answer.get("result"), printed=printed, seconds=seconds)


class PersistentSandbox:
    """One long-lived worker process that runs script after script (the sync engine's
    bulk work: starting a process per script costs about a quarter of a second).

    The isolation is the one-shot worker's: the same process limits (memory, file size;
    the CPU limit is moved up before each job by that job's allowance), a timer per job,
    a fresh namespace per run, and a hard kill from this side when an answer is late. A
    worker that was killed, or died, is replaced by a fresh one at the next job; each is
    also replaced after `max_jobs` jobs.
    """

    def __init__(self, max_jobs: int = 2000):
        self.max_jobs = max_jobs
        self._process: subprocess.Popen | None = None
        self._jobs = 0
        self._lock = threading.Lock()

    def run(self, job: dict[str, Any]) -> Outcome:
        with self._lock:
            started = time.perf_counter()
            fresh = self._process is None or self._process.poll() is not None
            try:
                process = self._ready_process()
            except OSError:
                logger.exception("The sync rules sandbox could not be started")
                return _failed("The sandbox could not be started. Try again in a moment.")
            line = json.dumps(job, ensure_ascii=True) + "\n"
            try:
                assert process.stdin is not None  # noqa: S101 - opened with PIPE
                process.stdin.write(line)
                process.stdin.flush()
                # A running worker answers at once; only a new one needs time to start.
                allowance = STARTUP_ALLOWANCE if fresh else RUNNING_ALLOWANCE
                answer = self._read_answer(process, TIME_LIMIT + allowance)
            except (OSError, ValueError):
                answer = None
            seconds = time.perf_counter() - started
            self._jobs += 1
            if answer is None:
                return self._lost(process, seconds)
            if self._jobs >= self.max_jobs:
                self.close_locked()
            completed = subprocess.CompletedProcess(process.args, 0, answer, "")
            return _outcome(completed, seconds)

    def close(self) -> None:
        with self._lock:
            self.close_locked()

    def close_locked(self) -> None:
        process, self._process = self._process, None
        self._jobs = 0
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.close()
            process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()

    def _ready_process(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, *WORKER_COMMAND, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # The worker may not write files (RLIMIT_FSIZE 0); a device is not a file.
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            cwd=ROOT,
            env={"PATH": os.defpath},
        )
        self._jobs = 0
        return self._process

    @staticmethod
    def _read_answer(process: subprocess.Popen, timeout: float) -> str | None:
        """One line of answer, or None when the worker is silent past `timeout` or gone."""
        assert process.stdout is not None  # noqa: S101 - opened with PIPE
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                return None
        line = process.stdout.readline()
        return line if line.endswith("\n") else None

    def _lost(self, process: subprocess.Popen, seconds: float) -> Outcome:
        """The worker did not answer: stop it and say why, as the one-shot worker would."""
        if process.poll() is None:
            process.kill()
        process.wait()
        self._process = None
        completed = subprocess.CompletedProcess(process.args, process.returncode or -9, "", "")
        if process.returncode in (0, None) or process.returncode > 0:
            return _failed("The sandbox stopped unexpectedly while running the script.", seconds)
        return _outcome(completed, seconds)


class SandboxPool:
    """Several long-lived sandbox workers for a process whose threads run scripts side by
    side: each script goes to a worker that is free (one script at a time each, as
    PersistentSandbox runs them), so the threads do not queue behind one worker."""

    def __init__(self, size: int, max_jobs: int = 2000):
        self.workers = [PersistentSandbox(max_jobs) for _ in range(max(size, 1))]
        # The last one freed is taken first: a worker is started only when the others are busy.
        self._free: queue.LifoQueue[PersistentSandbox] = queue.LifoQueue()
        for worker in self.workers:
            self._free.put(worker)

    def run(self, job: dict[str, Any]) -> Outcome:
        worker = self._free.get()
        try:
            return worker.run(job)
        finally:
            self._free.put(worker)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()


class _Persistent:
    """The process's long-lived sandbox workers, once the sync engine has asked for them
    (its threads share them: a script takes a millisecond or two)."""

    sandbox: SandboxPool | None = None
    lock = threading.Lock()


_persistent = _Persistent()


def use_persistent_sandbox(max_jobs: int = 2000, workers: int = 1) -> SandboxPool:
    """From now on this process runs scripts in long-lived workers (the sync engine):
    `workers` of them, one for each thread that may run a script at the same time. A later
    call asking for more workers than there are replaces them."""
    with _persistent.lock:
        current = _persistent.sandbox
        if current is not None and len(current.workers) >= workers:
            return current
        _persistent.sandbox = SandboxPool(workers, max_jobs)
        atexit.register(_persistent.sandbox.close)
    if current is not None:
        current.close()  # its scripts running now finish first (each worker's lock)
    return _persistent.sandbox


def stop_persistent_sandbox() -> None:
    with _persistent.lock:
        sandbox, _persistent.sandbox = _persistent.sandbox, None
    if sandbox is not None:
        sandbox.close()


def run_outgoing(script: str, request: Mapping[str, Any]) -> Outcome:
    """Run an outgoing script on a local Xurrent request (REST shape); the result is the
    replica the other side would receive."""
    entity = entity_from_request(request)
    return _run_in_worker({"direction": "outgoing", "source": script, "entity": entity})


def run_incoming(
    script: str,
    replica: Mapping[str, Any],
    request: Mapping[str, Any] | None = None,
    *,
    previous: Mapping[str, Any] | None = None,
) -> Outcome:
    """Run an incoming script on a replica from the other side.

    `request` is the local Xurrent request the replica is applied to, or None on the
    first sync, when there is no local request yet. `previous` is the last replica
    received for the twin (empty on the first sync), so a script can write only what the
    other side changed. The outcome lists the changes.
    """
    first_sync = request is None
    before = {} if first_sync else json.loads(json.dumps(entity_from_request(request)))
    outcome = _run_in_worker(
        {
            "direction": "incoming",
            "source": script,
            "replica": replica,
            "entity": before,
            "first_sync": first_sync,
            "previous": previous or {},
        }
    )
    outcome.before = before
    if outcome.ok and outcome.result is not None:
        outcome.changes = changes(before, outcome.result)
        outcome.warnings = request_problems(outcome.result, first_sync=first_sync)
        outcome.notes = reference_notes(before, outcome.result)
    return outcome
