"""The apps depend on each other one way only (DESIGN.md §2), checked on every import.

invitations → connections → nodes, sync → connections, sync → xurrent → nodes: an app
may import those below it, never those above, and no two apps import each other. Every
import counts, also one written inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ["nodes", "connections", "invitations", "xurrent", "sync"]
# What each app may import of the others.
ALLOWED = {
    "nodes": set(),
    "connections": {"nodes"},
    "invitations": {"connections", "nodes"},
    "xurrent": {"nodes"},
    "sync": {"connections", "xurrent", "nodes"},
}


def imported_apps(path: Path) -> set[tuple[str, int]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        else:
            continue
        found.update((name.split(".")[0], node.lineno) for name in names)
    return found


def app_sources(app: str) -> list[Path]:
    return [
        path
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and "__pycache__" not in path.parts
    ]


def wrong_imports(app: str) -> list[str]:
    forbidden = (set(APPS) | {"xurrent_sim"}) - ALLOWED[app] - {app}
    return [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in app_sources(app)
        for target, line in sorted(imported_apps(path))
        if target in forbidden
    ]


@pytest.mark.parametrize("app", [app for app in APPS if (ROOT / app).is_dir()])
def test_an_app_imports_only_the_apps_below_it(app):
    assert wrong_imports(app) == []


def test_the_check_catches_an_import_upwards(tmp_path, monkeypatch):
    (tmp_path / "nodes").mkdir()
    (tmp_path / "nodes" / "bad.py").write_text(
        "def later():\n    from connections.models import Connection\n"
    )
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert wrong_imports("nodes") == ["nodes/bad.py:2 imports connections"]


def test_the_allowed_imports_have_no_cycle():
    def reaches(start: str, goal: str, seen: frozenset = frozenset()) -> bool:
        return any(
            below == goal or (below not in seen and reaches(below, goal, seen | {below}))
            for below in ALLOWED[start]
        )

    assert not [app for app in APPS if reaches(app, app)]
