"""Where the apps built on connections add their parts to its pages.

Dependencies point one way (DESIGN.md §2): `connections` never imports `invitations` or
`sync`. They register a template for a named place on a page here, from their AppConfig,
and the page includes whatever was registered there, with its own context.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

# Places on the pages: "list.buttons" (beside the Connections title), "detail.after_status"
# and "detail.after_facts" (a connection's page).
_sections: dict[str, list[str]] = defaultdict(list)


def add_section(place: str, template_name: str) -> None:
    if template_name not in _sections[place]:
        _sections[place].append(template_name)


def sections(place: str) -> list[str]:
    return list(_sections[place])


# Work the node's one background process (`run_worker`) does besides telling peers what
# this side did: each task is called once a round and returns True when it did something
# (the worker then goes round again at once instead of waiting).
_worker_tasks: list[Callable[[], bool]] = []


def add_worker_task(task: Callable[[], bool]) -> None:
    if task not in _worker_tasks:
        _worker_tasks.append(task)


def worker_tasks() -> list[Callable[[], bool]]:
    return list(_worker_tasks)
