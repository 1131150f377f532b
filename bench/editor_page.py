"""The sync rules page in Chromium, with the script editor and without it.

A node is served by gunicorn (tests/livenodes.py: its own SQLite file in a temporary
folder) and Debian's Chromium loads the same rules page both ways in one browser: with the
editor, and as `?editor=plain` (the plain textareas, no editor bundle). The time is the
browser's own (Navigation Timing, from the start of the navigation): to the end of the load
event, and with the editor to when the editors are ready if that is later. Playwright's
own round trips are not counted.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.livenodes import start_node

CHROMIUM = "/usr/bin/chromium"
SETUP = """
from connections.models import Connection
from sync import DEFAULT_INCOMING, DEFAULT_OUTGOING
from sync.services import save_rules
c = Connection.objects.create(name="Bench rules", mode="script", role="source",
                              local_short_name="acme", remote_short_name="globex")
save_rules(c, DEFAULT_OUTGOING, DEFAULT_INCOMING)
print(c.pk)
"""
# Milliseconds from the start of the navigation to the page being loaded (and the editor
# ready, when the page has one).
LOADED_MS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const ready = performance.getEntriesByName("editor-ready")[0];
  return Math.max(nav.loadEventEnd, ready ? ready.startTime : 0);
}"""


def chromium_missing() -> str | None:
    """Why the editor case cannot run here, or None when it can."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing: the editor case needs Chromium (make browser, as root)."
    return None


class PageTimer:
    """Loads the rules page with the editor, or plain, and says how long the browser took."""

    def __init__(self, page, url: str):
        self.page, self.url = page, url

    def with_editor(self) -> float:
        self.page.goto(self.url, wait_until="load")
        self.page.wait_for_selector("html[data-editor=ready]", state="attached")
        return self.page.evaluate(LOADED_MS) / 1000

    def plain(self) -> float:
        self.page.goto(f"{self.url}?editor=plain", wait_until="load")
        return self.page.evaluate(LOADED_MS) / 1000


@contextmanager
def rules_page_timer() -> Iterator[PageTimer]:
    if missing := chromium_missing():
        raise SystemExit(missing)
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        # Static files collected for this run (as `make serve` does), never an earlier
        # run's: the page must load the bundle as it is now.
        node = start_node(Path(folder), "bench-editor", STATIC_ROOT=str(Path(folder) / "static"))
        try:
            connection_id = node.shell(SETUP).splitlines()[-1]
            # A browser with a profile on disk, as an admin's is: its cache keeps the
            # bundle, and V8 the code compiled from it.
            with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
                browser = pw.chromium.launch_persistent_context(
                    profile,
                    executable_path=CHROMIUM,
                    headless=True,
                    args=["--no-sandbox", "--headless"],
                )
                page = browser.new_page()
                _log_in(page, node)
                timer = PageTimer(page, f"{node.url}/connections/{connection_id}/rules/")
                # Warm both: the server, the browser's cache, the compiled bundle.
                for _ in range(3):
                    timer.with_editor(), timer.plain()
                assert page.locator("#id_outgoing").is_visible()  # plain: the textarea
                timer.with_editor()
                assert page.locator("#id_outgoing").is_hidden()  # the editor stands in
                yield timer
                browser.close()
        finally:
            node.stop()


def timed_rounds(timer: PageTimer, rounds: int) -> tuple[list[float], list[float]]:
    """`rounds` loads each way (with the editor, plain). The two take turns, and which one
    goes first changes every round, so that neither always follows the other: the garbage
    one leaves, or a burst of load on a shared machine, does not always land on one side."""
    with_editor: list[float] = []
    plain: list[float] = []
    for round_ in range(rounds):
        turns = [(timer.with_editor, with_editor), (timer.plain, plain)]
        for load, times in turns if round_ % 2 == 0 else reversed(turns):
            times.append(load())
    return with_editor, plain


def best_times(timer: PageTimer, rounds: int) -> tuple[float, float]:
    """The best of `rounds` loads each way, taking turns (see timed_rounds())."""
    with_editor, plain = timed_rounds(timer, rounds)
    return min(with_editor), min(plain)


def median_round_ratio(with_editor: list[float], plain: list[float]) -> float:
    """The median of each round's own ratio: the two loads of a round ran under about the
    same load of the machine, so this moves less with it than the best times do."""
    return statistics.median(e / p for e, p in zip(with_editor, plain, strict=True))


def _log_in(page, node) -> None:
    page.goto(f"{node.url}/accounts/login/")
    page.fill("#id_username", node.username)
    page.fill("#id_password", node.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{node.url}/connections/")
