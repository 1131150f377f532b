"""Bulk exalate throughput against a plain copy script (`python bench/sync_bulk.py`).

Both copy the same N requests (each with a description note) from account A to an empty
account, on this machine, over real HTTP to simulators:

- baseline: a plain script with the Xurrent client: list A's requests page by page, read
  each one's notes, create it on the target with its description;
- subject: the product: two live nodes (gunicorn), each with its worker (`run_worker`) and
  its own simulated account (webhooks to its node, polls every 30 s as by default); an
  admin presses Bulk exalate on A's Sync tab (logged in beforehand, as the plain script
  has its clients made beforehand), timed until B holds every copy. Each side's timing
  starts in a running process: neither counts a Python interpreter starting (the
  `bulk_exalate` command would add one, about a second, to the engine's time). The
  nodes use SQLite (the embedded default) unless `--database` names a PostgreSQL URL
  template with `{name}` (e.g. postgres://postgres@127.0.0.1:5432/bench_{name}:
  databases made and dropped).

Neither is held back by a rate budget (the simulators and the clients allow all calls):
the ratio is the engine's own cost. Target: the engine reaches at least 0.3 of the plain
script's throughput.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for name, value in {
    "DJANGO_SETTINGS_MODULE": "exalate_site.settings",
    "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
    "DATABASE_URL": "sqlite://:memory:",
    "EXALATE_ALLOW_PRIVATE_NETWORKS": "true",
    "LOG_LEVEL": "WARNING",
}.items():
    os.environ.setdefault(name, value)

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402

from tests.livenodes import logged_in_client, post_form  # noqa: E402
from tests.sync.live import connect, start_side  # noqa: E402
from xurrent.client import RateBudget, XurrentClient  # noqa: E402
from xurrent_sim.testing import start_simulator  # noqa: E402

UNLIMITED = 10**9


def seed(base: str, headers: dict, count: int) -> None:
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        for n in range(count):
            answer = http.post(
                "/requests",
                json={
                    "subject": f"Bulk request {n}",
                    "category": "incident",
                    "impact": "low",
                    "team_id": 1,
                    "note": f"What happened to request {n}.",
                },
            )
            answer.raise_for_status()


def total(base: str, headers: dict, http: httpx.Client | None = None) -> int:
    """How many requests the account at `base` holds. `http`: the client of a loop that
    asks often (a new client per call costs some 10 ms of CPU, taken from the engine)."""
    get = http.get if http is not None else httpx.get
    answer = get(f"{base}/requests?per_page=1", headers=headers, timeout=30)
    return int(answer.headers["X-Pagination-Total-Entries"])


def client_for(sim) -> XurrentClient:
    return XurrentClient(
        sim.url, sim.account, sim.token, budget=RateBudget(per_hour=UNLIMITED, burst=UNLIMITED)
    )


def plain_copy(source, target) -> float:
    """The baseline: copy every request with its description, as a script would."""
    a, b = client_for(source), client_for(target)
    started = time.perf_counter()
    for request in a.list_requests({"category": "incident"}, sort="id"):
        notes = sorted(a.list_notes(request["id"]), key=lambda n: n["id"])
        b.create_request(
            {
                "subject": request["subject"],
                "category": request["category"],
                "impact": request["impact"],
                "team_id": 1,
                "note": notes[0]["text"] if notes else None,
                "sourceID": str(request["id"]),
            }
        )
    return time.perf_counter() - started


def wait_until_idle(side, timeout: float = 300) -> None:
    """Until the node's worker has taken every webhook hint."""
    check = "from xurrent.models import WebhookHint\nprint(WebhookHint.objects.pending().count())"
    deadline = time.monotonic() + timeout
    while int(side.shell(check).splitlines()[-1]) and time.monotonic() < deadline:
        time.sleep(1)


def engine_copy(a, b, count: int, timeout: float) -> float:
    """Bulk exalate pressed on A's Sync tab, until B's account holds `count` requests
    (asked every 0.1 s: a tenth of a second is 1% of the time measured)."""
    path = f"/connections/{a.connection_id}/sync/bulk-exalate/"
    admin = logged_in_client(a.node)  # opened already: closed at the end
    watch = httpx.Client()
    try:
        admin.get(f"/connections/{a.connection_id}/sync/")
        started = time.perf_counter()
        pressed = post_form(admin, path, {})
        if pressed.status_code != 302:
            raise SystemExit(f"Bulk exalate was not started: HTTP {pressed.status_code}")
        while total(b.sim.url, b.sim.headers, watch) < count:
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"The engine did not copy {count} requests in {timeout:.0f} s.")
            time.sleep(0.1)
        return time.perf_counter() - started
    finally:
        admin.close()
        watch.close()


def fresh_database(template: str, name: str) -> dict[str, str]:
    """A new PostgreSQL database for one node (`template` has `{name}`), or SQLite."""
    if not template:
        return {}
    url = template.format(name=name)
    admin = url.rsplit("/", 1)[0] + "/postgres"
    import psycopg

    with psycopg.connect(admin.replace("postgres://", "postgresql://"), autocommit=True) as pg:
        database = url.rsplit("/", 1)[1]
        pg.execute(f'DROP DATABASE IF EXISTS "{database}"')
        pg.execute(f'CREATE DATABASE "{database}"')
    return {"DATABASE_URL": url}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--target", type=float, default=0.3)
    parser.add_argument("--database", default="", help="PostgreSQL URL template with {name}")
    parser.add_argument("--no-webhooks", action="store_true", help="the nodes poll only")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sync-bulk-"))
    sides = []
    options = {
        "calls_per_hour": UNLIMITED,
        "burst": UNLIMITED,
        "webhooks": not args.no_webhooks,
        "poll_seconds": "30",
    }
    try:
        a = start_side(workdir, "a", **options, **fresh_database(args.database, "a"))
        sides.append(a)
        b = start_side(workdir, "b", **options, **fresh_database(args.database, "b"))
        sides.append(b)
        # The requests exist before the connection does (bulk exalate's case); the
        # baseline runs once A's node has taken in their webhooks, on a quiet machine.
        seed(a.sim.url, a.sim.headers, args.requests)
        wait_until_idle(a)
        target = start_simulator(account="plain-target", rate_limit=UNLIMITED)
        try:
            plain_s = plain_copy(a.sim, target)
        finally:
            target.stop()
        connect(a, b)
        engine_s = engine_copy(a, b, args.requests, args.timeout)
    finally:
        for side in sides:
            side.stop()
    plain_rate, engine_rate = args.requests / plain_s, args.requests / engine_s
    ratio = engine_rate / plain_rate
    print(f"{'':28}{'seconds':>10}{'requests/s':>12}")
    print(f"{'plain copy script':28}{plain_s:10.1f}{plain_rate:12.1f}")
    print(f"{'bulk exalate (two nodes)':28}{engine_s:10.1f}{engine_rate:12.1f}")
    database = "PostgreSQL" if args.database else "SQLite"
    print(f"nodes on {database}, webhooks {'off' if args.no_webhooks else 'on'}")
    verdict = "ok" if ratio >= args.target else "MISSED"
    print(f"engine / plain throughput: {ratio:.2f} (target ≥ {args.target}) {verdict}")
    return 0 if ratio >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
