"""References an incoming script gives by name: a team, an assignee, a reporter.

Xurrent writes references by id only (`team_id`, `member_id`, `requested_by_id`), but
an admin writes `entity.team = "Service Desk"` or `entity.assignee = "jo@example.com"`.
Here such a value becomes the id of that team or person in this node's Xurrent account.
Xurrent's documented API has no name filter for teams or people, so the account's list
is read and matched here, and kept per worker process for a short while (the sync of
a thousand requests reads it once, not a thousand times). A name that matches nothing,
or several, is an error that names the field and the name: it holds the twin, as a
422 would, and is never dropped silently.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xurrent.client import XurrentError

# How long a worker trusts the account's list of teams or people it read.
DIRECTORY_TTL = 120.0
# A name not found in a list older than this reads the list again once: someone may just
# have made the team and pressed Retry.
MISS_REFRESH_AFTER = 5.0

# An entity field given by reference → what it points to in Xurrent.
TEAM, PERSON, SERVICE = "team", "person", "service"
REFERENCE_TARGETS = {
    "team": TEAM,
    "assignee": PERSON,
    "reporter": PERSON,
    "requested_by": PERSON,
    "service": SERVICE,
}


class UnknownReference(Exception):
    """A reference the incoming script gave cannot be turned into an id of this account."""

    def __init__(self, field: str, message: str, fact: str = ""):
        super().__init__(message)
        self.field = field
        self.message = message
        self.fact = fact or message  # what is wrong, without the advice on the script


@dataclass
class _Listing:
    items: list[dict]
    read_at: float


class Directory:
    """The teams and people of one Xurrent account, read when first needed.

    Shared by the worker's threads (one per account and process, see `directory_for`);
    `reader` lists the records of a kind (`team` or `person`) through a gateway.
    """

    def __init__(self, ttl: float = DIRECTORY_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._listings: dict[str, _Listing] = {}

    def records(self, kind: str, reader: Callable[[str], Iterable[dict]], *, fresh=False):
        """The account's records of `kind`; read again when older than the TTL, or than
        MISS_REFRESH_AFTER when `fresh`."""
        now = self.clock()
        with self._lock:
            listing = self._listings.get(kind)
        max_age = MISS_REFRESH_AFTER if fresh else self.ttl
        if listing is not None and now - listing.read_at < max_age:
            return listing.items, False
        items = [item for item in reader(kind) if isinstance(item, Mapping)]
        with self._lock:
            self._listings[kind] = _Listing(items, self.clock())
        return items, True

    def clear(self) -> None:
        with self._lock:
            self._listings.clear()


_directories: dict[Any, Directory] = {}
_directories_lock = threading.Lock()


def directory_for(gateway: Any) -> Directory:
    """The directory of the account behind `gateway` (a client names its account; a test
    double is its own account)."""
    base_url, account = getattr(gateway, "base_url", None), getattr(gateway, "account", None)
    key = (base_url, account) if isinstance(base_url, str) else ("object", id(gateway))
    with _directories_lock:
        return _directories.setdefault(key, Directory())


def forget_directories() -> None:
    """Drop every account's lists (tests; a worker never needs to)."""
    with _directories_lock:
        _directories.clear()


def _read_with(gateway: Any) -> Callable[[str], Iterable[dict]]:
    def read(kind: str) -> Iterable[dict]:
        return gateway.list_teams() if kind == TEAM else gateway.list_people()

    return read


# --- one value ------------------------------------------------------------------------------


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _an_id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def reference_id(field: str, value: Any, gateway: Any, directory: Directory | None = None) -> int:
    """The id of this account's team or person that `value` names, for entity `field`.

    Accepted: an id (a number), `{"id": n}`, a name (text), `{"name": "…"}`, and for
    people also an email address. UnknownReference says what is wrong otherwise.
    """
    target = REFERENCE_TARGETS[field]
    given = _an_id(value)
    if given is None and isinstance(value, Mapping):
        given = _an_id(value.get("id"))
        if given is None:
            value = value.get("name") or value.get("email") or value.get("primary_email")
    if given is not None:
        return given
    what = _target_words(target)
    if not isinstance(value, str) or not value.strip():
        raise UnknownReference(
            field,
            f"entity.{field} must be {what}'s name or id in this Xurrent account, "
            f"not {_shown(value)}.",
        )
    name = value.strip()
    if target == SERVICE:
        raise UnknownReference(
            field,
            f"entity.{field} is {name!r}: a service instance can only be given by its id "
            "(a number) in the incoming script; names are looked up for teams and people.",
        )
    directory = directory or directory_for(gateway)
    read = _read_with(gateway)
    try:
        items, fresh = directory.records(target, read)
        found = _matches(target, name, items)
        if not found and not fresh:
            items, _ = directory.records(target, read, fresh=True)
            found = _matches(target, name, items)
    except XurrentError as exc:
        if exc.retryable:
            raise  # the engine tries again later by itself
        raise UnknownReference(
            field,
            f"entity.{field} is {name!r}, but this Xurrent account's {target} list could "
            f"not be read to look it up: {exc.message} Give its id instead, or let the "
            "API token read the list.",
        ) from None
    if len(found) == 1:
        return int(found[0]["id"])
    if not found:
        fact = f"No {target} named {name!r} in this Xurrent account."
        raise UnknownReference(
            field,
            f"{fact[:-1]} (entity.{field} in the incoming script): give the name of one of "
            f"its {target}s, or its id.",
            fact,
        )
    ids = ", ".join(str(item.get("id")) for item in found[:5])
    fact = f"Several {target}s in this Xurrent account are named {name!r} (ids {ids})."
    raise UnknownReference(
        field,
        f"{fact[:-1]}: give entity.{field} the id of the one meant in the incoming script.",
        fact,
    )


def _matches(target: str, name: str, items: list[dict]) -> list[dict]:
    """Records named exactly `name`; failing that, the same name ignoring case and spaces
    (or, for a person, the same email address)."""
    valid = [item for item in items if _an_id(item.get("id")) is not None]
    if target == PERSON and "@" in name:
        email = name.casefold()
        return [p for p in valid if str(p.get("primary_email") or "").casefold() == email]
    exact = [item for item in valid if item.get("name") == name]
    if exact:
        return exact
    folded = _folded(name)
    return [item for item in valid if _folded(str(item.get("name") or "")) == folded]


def _target_words(target: str) -> str:
    return {TEAM: "a team", PERSON: "a person", SERVICE: "a service instance"}[target]


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "empty"
    return f"{type(value).__name__} {value!r}"[:80]


# --- where the script set it ----------------------------------------------------------------


def assignment_line(script: str, field: str) -> tuple[int | None, str]:
    """The line of `script` that sets entity.<field> (the first one), for the error."""
    pattern = re.compile(rf"""^\s*entity\s*(\.\s*{field}\b|\[\s*["']{field}["']\s*\])\s*=[^=]""")
    for number, line in enumerate(script.splitlines(), start=1):
        if pattern.search(line):
            return number, line.strip()
    return None, ""
