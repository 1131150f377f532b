"""The cases served as in production: gunicorn (gunicorn.conf.py, 2 sync workers, DEBUG
off) on PostgreSQL databases made for this run from one migrated template and dropped
after it (exalate_bench_<pid>_*, so that two runs side by side keep apart). Each case
has its baseline measured in the same run, taking turns with it where it can.

Without a PostgreSQL server the bench can create databases on (BENCH_POSTGRES_URL,
default postgres://postgres@127.0.0.1:5432/postgres) these cases are reported as not run,
with the reason.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.live import (
    GUNICORN,
    Peer,
    Postgres,
    Server,
    collect_static,
    database_name,
    get_many,
    get_ok,
    launch,
    logged_in_client,
    median_pair,
    node_env,
    post_all,
    progress,
    run_task,
)
from bench.table import NotRun, Row

SMALL, LARGE = 100, 10_000
ACCEPT = "/api/v1/invitations/accept/"
INSERT = "/bench/insert/"
CLIENT_THREADS = 4
WARM_ACCEPTS = 8

PAGE_NAMES = [
    "Connections page at 10,000: time",
    "Connections page at 10,000: size",
    "live refresh (?status_of=) at 10,000: time",
    "live refresh (?status_of=) at 10,000: size",
]
ACCEPT_NAMES = ["accept API: throughput"]
MEMORY_NAMES = ["node worker RSS after 1,000 mixed requests"]
DELIVERY_NAMES = ["outbox: worker delivers queued notifications"]
ALL_NAMES = PAGE_NAMES + ACCEPT_NAMES + MEMORY_NAMES + DELIVERY_NAMES


def served_rows(quick: bool) -> tuple[list[Row], list[NotRun]]:
    postgres = Postgres()
    problem = postgres.problem()
    if not problem and not GUNICORN.exists():
        problem = f"gunicorn is not installed at {GUNICORN} (make install)."
    if problem:
        hint = " Start PostgreSQL, or set BENCH_POSTGRES_URL to a server where the role may "
        return [], [NotRun(ALL_NAMES, problem + hint + "create databases.")]
    names: list[str] = []

    def database(name: str, *, template: str = "") -> str:
        full = database_name(name)
        url = postgres.create(full, template=template and database_name(template))
        names.append(full)
        return url

    postgres.drop_leftovers()

    try:
        with tempfile.TemporaryDirectory(prefix="exalate-bench-") as tmp:
            logdir = Path(tmp)
            progress("served cases: migrating a template database, collecting static files")
            template_env = node_env(database("template"))
            run_task(template_env, "prepare")
            collect_static(template_env)
            small, large, accept, outbox = (
                database(name, template="template") for name in ("100", "10k", "accept", "outbox")
            )
            rounds, per_round = (3, 25) if quick else (8, 30)
            progress(f"inserting {SMALL} and {LARGE} connections, issuing invitations")
            with ThreadPoolExecutor(3) as pool:
                seeds = [
                    pool.submit(run_task, node_env(small), "connections", str(SMALL)),
                    pool.submit(run_task, node_env(large), "connections", str(LARGE)),
                    pool.submit(
                        run_task,
                        node_env(accept),
                        "invitations",
                        str(rounds * per_round + WARM_ACCEPTS),
                    ),
                ]
                accept_bodies = json.loads(seeds[2].result())
                for seed in seeds:
                    seed.result()
            return [
                *page_rows(small, large, logdir, quick),
                *accept_rows(accept, accept_bodies, logdir, rounds),
                *memory_rows(small, logdir),
                *delivery_rows(outbox, quick),
            ], []
    finally:
        for name in names:
            postgres.drop(name)


def _started(*servers: Server) -> list[Server]:
    try:
        for server in servers:
            server.wait_ready()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return list(servers)


ROW = re.compile(r'<tr data-connection-id="([0-9a-f-]{36})" data-status="(\w+)"')


def page_rows(small: str, large: str, logdir: Path, quick: bool) -> list[Row]:
    """The Connections page and its live refresh, at 10,000 connections and at 100."""
    progress("Connections page and live refresh: 100 and 10,000 connections")
    servers = _started(
        launch("page-100", small, logdir=logdir), launch("page-10k", large, logdir=logdir)
    )
    clients: list[httpx.Client] = []
    try:
        clients += [logged_in_client(server) for server in servers]
        at_small, at_large = clients
        count = 15 if quick else 40
        page = "/connections/"
        large_s, small_s, large_size, small_size = median_pair(
            at_large, page, at_small, page, count=count
        )

        def refresh_path(client: httpx.Client) -> str:
            # Every row of page 1 asked about as if shown pending: the largest answer the
            # refresh can get (each row that is not pending comes back as new HTML).
            rows = ROW.findall(get_ok(client, page).text)
            return page + "?status_of=" + ",".join(f"{pk}:pending" for pk, _status in rows)

        large_r, small_r, large_rsize, small_rsize = median_pair(
            at_large, refresh_path(at_large), at_small, refresh_path(at_small), count=count
        )
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.stop()
    note = f"median of {count}, logged in"
    return [
        Row(PAGE_NAMES[0], "same page at 100", large_s, small_s, 1.5, note=note),
        Row(PAGE_NAMES[1], "same page at 100", large_size, small_size, 1.5, unit="B"),
        Row(PAGE_NAMES[2], "same at 100", large_r, small_r, 1.5, note="page 1's 50 rows asked"),
        Row(PAGE_NAMES[3], "same at 100", large_rsize, small_rsize, 1.5, unit="B"),
    ]


def accept_rows(accept: str, bodies: list[dict], logdir: Path, rounds: int) -> list[Row]:
    """Accepts per second, each of a fresh invitation, against one-row inserts per second,
    served by the same workers (bench/settings.py adds the insert endpoint). Short rounds
    of each take turns, so a busy moment of the machine falls on both alike."""
    progress("accept API against a one-row insert")
    (server,) = _started(
        launch("accept", accept, logdir=logdir, DJANGO_SETTINGS_MODULE="bench.settings")
    )
    try:
        warm, bodies = bodies[:WARM_ACCEPTS], bodies[WARM_ACCEPTS:]
        post_all(server, ACCEPT, warm, threads=CLIENT_THREADS)
        post_all(server, INSERT, [{"note": "warm-up"}] * WARM_ACCEPTS, threads=CLIENT_THREADS)
        per_round = len(bodies) // rounds
        accept_s = insert_s = 0.0
        for r in range(rounds):
            batch = bodies[r * per_round : (r + 1) * per_round]
            accept_s += post_all(server, ACCEPT, batch, threads=CLIENT_THREADS)
            inserts = [{"note": "bench"}] * per_round
            insert_s += post_all(server, INSERT, inserts, threads=CLIENT_THREADS)
    finally:
        server.stop()
    done = per_round * rounds
    note = f"{rounds} rounds of {per_round} each, {CLIENT_THREADS} clients"
    return [
        Row(
            ACCEPT_NAMES[0],
            "DRF one-row insert",
            done / accept_s,
            done / insert_s,
            0.3,
            "req/s",
            note,
        )
    ]


def _mean(sizes: list[int]) -> float:
    return sum(sizes) / len(sizes)


def memory_rows(small: str, logdir: Path) -> list[Row]:
    """Resident memory of the node's workers after mixed requests, against bare Django +
    DRF workers (bench/bare_settings.py) after as many requests to their one view."""
    progress("worker memory: the node against bare Django + DRF")
    node, bare = _started(
        launch("memory-node", small, logdir=logdir),
        launch(
            "memory-bare",
            small,
            logdir=logdir,
            app="django.core.wsgi:get_wsgi_application()",
            ready_path="/",
            DJANGO_SETTINGS_MODULE="bench.bare_settings",
        ),
    )
    count = 1000
    booted = node.worker_rss(), bare.worker_rss()
    try:
        admin = logged_in_client(node)
        ids = [pk for pk, _status in ROW.findall(get_ok(admin, "/connections/").text)]
        cookies = admin.cookies
        admin.close()
        kinds = ["/connections/", "/connections/{}/", "/api/v1/instance/", "/healthz"]
        mixed = [kinds[i % 4].format(ids[i % len(ids)]) for i in range(count)]
        get_many(
            lambda: httpx.Client(base_url=node.url, cookies=cookies, timeout=30),
            mixed,
            threads=2,
        )
        get_many(lambda: httpx.Client(base_url=bare.url, timeout=30), ["/"] * count, threads=2)
        node_rss, bare_rss = node.worker_rss(), bare.worker_rss()
        node_shares, bare_shares = node.worker_shares(), bare.worker_shares()
    finally:
        node.stop()
        bare.stop()
    return [
        Row(
            MEMORY_NAMES[0],
            "bare Django+DRF worker, as many",
            _mean(node_rss),
            _mean(bare_rss),
            1.3,
            "MB",
            f"mean of {len(node_rss)} workers; at boot "
            f"{_mean(booted[0]) / 2**20:.0f} / {_mean(booted[1]) / 2**20:.0f} MB; "
            f"{_shares(node_shares, bare_shares)}",
        )
    ]


def _shares(node: list[tuple[int, int]], bare: list[tuple[int, int]]) -> str:
    """USS and PSS beside RSS: RSS counts in every worker the pages of shared libraries
    (cryptography's, psycopg's), which are in memory once however many workers map them;
    USS is what one more worker adds."""

    def mb(sizes: list[tuple[int, int]], which: int) -> str:
        return f"{_mean([size[which] for size in sizes]) / 2**20:.0f}"

    return f"USS {mb(node, 0)} / {mb(bare, 0)} MB, PSS {mb(node, 1)} / {mb(bare, 1)} MB"


def delivery_rows(outbox: str, quick: bool) -> list[Row]:
    """The worker's delivery of queued notifications to a peer that answers at once,
    against bare pooled httpx POSTs of the same bodies to the same peer."""
    count, rounds = (100, 2) if quick else (200, 9)
    progress("outbox delivery against bare httpx POSTs")
    with Peer() as peer:
        figures = json.loads(
            run_task(node_env(outbox), "deliver", str(count), str(rounds), peer.url)
        )
    return [
        Row(
            DELIVERY_NAMES[0],
            "bare pooled httpx POSTs",
            figures["subject"],
            figures["baseline"],
            1.5,
            note=f"{count} to a stand-in peer, best of {rounds} (median of the rounds' own "
            f"ratios {statistics.median(figures['ratios']):.2f}x); the worker sends from one "
            f"thread while calls are quick, up to {figures['most_at_once']} when one is slow",
        )
    ]
