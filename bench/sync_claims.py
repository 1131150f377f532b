"""The sync queue's claims with a long history: each claim query of a worker round timed
with 100,000 finished events in the event tables, against the same claim at 1,000.

A node's event tables only grow: every change sent or received leaves a finished row
(applied, superseded, failed). A worker claims what is waiting several times a second, so
that claim must cost the same whether the tables hold a day's history or a year's. The
bench fills two PostgreSQL databases with bulk_create: 1,000 finished events in each event
table (sent and received) and 100,000, over 20 connections and a twin per 20 events (50
and 5,000 twins: synced requests grow with the history), spread as a desk's changes are
(a few requests changed very often); in both the same handful waits, at the end of their
twins' histories (where a scan of history would hurt). After VACUUM ANALYZE (as
autovacuum would have done by then) each claim is timed over several rounds, each in a
transaction rolled back so that every round claims the same rows: each of its queries
(lock the candidates, lease them, read them back) best of the rounds, summed; the best
whole call is in the note. The two sizes take turns. The plan of each claim's locking
query (EXPLAIN ANALYZE) goes in the note too: the indexes it reads the event tables by,
or a sequential scan of one, named as such.

`fill_and_time` runs inside a node's Django (`python -m bench.tasks claims N ROUNDS`);
`claim_rows` makes the database and drives it from `bench/run.py`.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from bench.live import Postgres, database_name, node_env, progress, run_task
from bench.table import Row

SMALL, LARGE = 1_000, 100_000
CONNECTIONS = 20
# Synced requests grow with the history: a request's changes make about 20 events each
# way over its life (a few requests far more, most fewer).
EVENTS_PER_TWIN = 20
# The worker's batch (run_worker --batch-size) and what each claim takes of it.
BATCH = 20
# The claims of a worker round over the event tables (the producer's claims twins only).
CLAIMS = ("send", "apply", "acks")
NAMES = [f"sync queue claim ({claim}) at {LARGE:,} finished events" for claim in CLAIMS]
EVENT_TABLES = ("sync_syncevent", "sync_inboundevent")


# --- inside the node's Django (bench.tasks) ---------------------------------------------------


def fill_and_time(finished: int, rounds: int) -> dict:
    """Bring each event table to `finished` finished rows (on the first call), with the
    waiting ones at the end of their twins' histories, and time each claim:
    {name: {"seconds", "claimed", "plan"}}."""
    from django.db import connection as db

    from sync.models import FINAL_STATES, SyncEvent

    twins = _fixture(max(finished // EVENTS_PER_TWIN, 50))
    if SyncEvent.objects.filter(state__in=FINAL_STATES).count() < finished:
        _clear_waiting()
        _fill_history(twins, finished)
        _queue_waiting(twins)
        with db.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # what autovacuum would have done by now
    return {name: _time_claim(take, rounds) for name, take in _claims().items()}


def _fixture(count: int) -> list:
    """The connections and `count` twins, made on the first call."""
    from connections.models import Connection
    from sync.models import Twin

    if not Connection.objects.filter(name__startswith="Claim bench").exists():
        now = _now()
        connections = Connection.objects.bulk_create(
            Connection(
                name=f"Claim bench {i:02d}",
                mode="script",
                role="source",
                local_short_name="desk-a",
                remote_short_name=f"peer-{i}",
                remote_url=f"https://peer-{i}.example.com",
                remote_uid=uuid.uuid4(),
                remote_connection_id=str(uuid.uuid4()),
                remote_platform="xurrent",
                status="active",
                remote_status="active",
                remote_status_at=now,
                shared_secret=f"claim-bench-secret-{i}-0123456789abcdef",
                activated_at=now,
            )
            for i in range(CONNECTIONS)
        )
        Twin.objects.bulk_create(
            Twin(
                connection=connections[i % CONNECTIONS],
                origin="local" if i % 3 else "remote",
                status="open",
                local_request_id=10_000 + i,
                remote_request_id=str(50_000 + i),
                synced_at=now,
            )
            for i in range(count)
        )
    # Twin 0 first: the hottest (the longest history) is where a scan of history hurts.
    return list(Twin.objects.filter(connection__name__startswith="Claim bench").order_by("id"))


def _now():
    from django.utils import timezone

    return timezone.now()


def _clear_waiting() -> None:
    from sync.models import EventState, InboundEvent, InboundState, SyncEvent

    SyncEvent.objects.filter(state__in=(EventState.QUEUED, EventState.IN_PROGRESS)).delete()
    InboundEvent.objects.filter(state=InboundState.QUEUED).delete()
    InboundEvent.objects.filter(ack_pending=True).delete()


def _fill_history(twins: list, finished: int) -> None:
    """Finished events until each table holds `finished` of them, spread over the twins
    as a real desk's are: a few requests changed very often, most a few times."""
    from sync.models import InboundEvent, SyncEvent, Twin

    rng = random.Random(f"claims-{finished}")
    weights = [1 / (rank + 1) for rank in range(len(twins))]
    now = _now()
    for model, make in ((SyncEvent, _sent), (InboundEvent, _received)):
        missing = finished - model.objects.count()
        for start in range(0, max(missing, 0), 5_000):
            chosen = rng.choices(twins, weights=weights, k=min(5_000, missing - start))
            model.objects.bulk_create((make(twin, rng, now) for twin in chosen), batch_size=1_000)
    Twin.objects.bulk_update(twins, ["last_seq_sent", "last_seq_applied"], batch_size=1_000)


def _replica(twin, rng: random.Random) -> dict:
    return {
        "subject": f"Printer on floor {twin.pk % 9} jams ({rng.randrange(1000)})",
        "status": rng.choice(["assigned", "in_progress", "waiting_for_customer", "completed"]),
        "impact": rng.choice(["low", "medium", "high"]),
        "notes": [{"id": rng.randrange(10**6), "text": "Checked the tray again."}],
    }


def _sent(twin, rng: random.Random, now):
    from sync.models import EventState, SyncEvent

    twin.last_seq_sent += 1
    at = now - timedelta(days=30) + timedelta(seconds=twin.last_seq_sent)
    state = rng.choices(
        [EventState.APPLIED, EventState.SUPERSEDED, EventState.FAILED], weights=[92, 6, 2]
    )[0]
    return SyncEvent(
        connection_id=twin.connection_id,
        twin=twin,
        seq=twin.last_seq_sent,
        replica=_replica(twin, rng),
        previous=_replica(twin, rng),
        state=state,
        attempts=1,
        next_try_at=at,
        created_at=at,
        sent_at=at,
        finished_at=at,
    )


def _received(twin, rng: random.Random, now):
    from sync.models import InboundEvent, InboundState

    twin.last_seq_applied += 1
    at = now - timedelta(days=30) + timedelta(seconds=twin.last_seq_applied)
    return InboundEvent(
        connection_id=twin.connection_id,
        uuid=uuid.uuid4(),
        twin=twin,
        seq=twin.last_seq_applied,
        sender_request_id=twin.remote_request_id,
        replica=_replica(twin, rng),
        previous=_replica(twin, rng),
        body_digest=f"{rng.getrandbits(256):064x}",
        state=InboundState.APPLIED if rng.random() < 0.95 else InboundState.SUPERSEDED,
        request_id=str(twin.local_request_id),
        attempts=1,
        next_try_at=at,
        received_at=at,
        finished_at=at,
    )


def _queue_waiting(twins: list) -> None:
    """The handful waiting: on the hottest twins and a few quiet ones, after everything
    they have finished (a twin's waiting event is the newest of its history)."""
    from sync.models import EventState, InboundEvent, InboundState, SyncEvent

    rng = random.Random("waiting")
    now = _now()
    due = now - timedelta(seconds=1)
    # The same handful at every size: the five hottest twins and five quiet ones.
    waiting = [*twins[:5], *(twins[len(twins) * k // 6] for k in range(1, 6))]
    events, inbound = [], []
    for twin in waiting:
        # The hottest twin has three changes waiting: only the oldest may go.
        for _ in range(3 if twin is twins[0] else 1):
            event = _sent(twin, rng, now)
            event.state, event.next_try_at, event.sent_at, event.finished_at = (
                EventState.QUEUED,
                due,
                None,
                None,
            )
            events.append(event)
        received = _received(twin, rng, now)
        received.state, received.next_try_at, received.finished_at = InboundState.QUEUED, due, None
        inbound.append(received)
        acked = _received(twin, rng, now)  # applied, its result not yet told
        acked.ack_pending, acked.ack_next_try_at = True, due
        inbound.append(acked)
    # Results waiting and events waiting apply in seq order: the applied one comes first.
    SyncEvent.objects.bulk_create(events)
    InboundEvent.objects.bulk_create(inbound)
    for twin in waiting:
        twin.save(update_fields=["last_seq_sent", "last_seq_applied"])


def _claims() -> dict[str, Callable[[], list]]:
    """The claims of a worker round, as the services make them (sync/services): the same
    querysets, limits and changes."""
    from django.db.models import Exists, F, OuterRef

    from connections.models import Status
    from sync.models import EventState, InboundEvent, InboundState, SyncEvent, Twin, TwinStatus
    from sync.models.claims import claim
    from sync.services import send

    def send_claim() -> list:  # send_events
        due = SyncEvent.objects.sendable().select_related("twin", "connection")
        return claim(
            due,
            BATCH,
            SyncEvent.LEASE,
            order_by=("next_try_at", "id"),
            related=("twin", "connection"),
            state=EventState.IN_PROGRESS,
            attempts=F("attempts") + 1,
        )

    def apply_claim() -> list:  # apply_inbound
        now = _now()
        waiting = InboundEvent.objects.filter(
            twin=OuterRef("pk"), state=InboundState.QUEUED, next_try_at__lte=now
        )
        due = (
            Twin.objects.unleased(now)
            .filter(status__in=(TwinStatus.CREATING, TwinStatus.OPEN))
            .filter(connection__status=Status.ACTIVE)
            .filter(Exists(waiting))
            .select_related("connection")
        )
        return claim(due, BATCH, Twin.LEASE, order_by=("id",), related=("connection",))

    def acks_claim() -> list:  # send_acks
        return send._claim_acks(BATCH * 2)

    return {"send": send_claim, "apply": apply_claim, "acks": acks_claim}


def _time_claim(take: Callable[[], list], rounds: int) -> dict:
    """Each query of a claim, best of `rounds` claims (each rolled back: the same rows
    every time), and their sum; the best whole call beside it; the plan of its locking
    query. The sum is the figure: on a busy machine few whole calls go by without another
    process taking the CPU in the middle, but each query does now and then."""
    from django.db import connection as db
    from django.db import transaction

    timer = _QueryTimer()
    best_call, claimed = float("inf"), 0
    for n in range(rounds + 2):  # two to warm the connection and the caches
        with transaction.atomic(), db.execute_wrapper(timer):
            timer.start(counted=n >= 2)
            started = time.perf_counter()
            claimed = len(take())
            best_call = min(best_call, time.perf_counter() - started)
            transaction.set_rollback(True)
    explainer = _ExplainLocking()
    with transaction.atomic(), db.execute_wrapper(explainer):
        take()
        transaction.set_rollback(True)
    return {
        "seconds": sum(timer.best),
        "queries": len(timer.best),
        "each": timer.best,
        "call_seconds": best_call,
        "claimed": claimed,
        "plan": explainer.plan,
    }


class _QueryTimer:
    """The best time of each query of a claim, by its place in the claim. The savepoints
    are the bench's (every round is rolled back), not the claim's: left out."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.best: list[float] = []
        self.counted = False
        self.place = 0

    def start(self, *, counted: bool) -> None:
        self.counted, self.place = counted, 0

    def __call__(self, execute, sql, params, many, context):
        if sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK")):
            return execute(sql, params, many, context)
        started = self.clock()
        try:
            return execute(sql, params, many, context)
        finally:
            took = self.clock() - started
            if self.counted:
                if self.place < len(self.best):
                    self.best[self.place] = min(self.best[self.place], took)
                else:
                    self.best.append(took)
            self.place += 1


class _ExplainLocking:
    """Runs EXPLAIN ANALYZE of the claim's locking SELECT (… FOR UPDATE SKIP LOCKED) just
    before the query itself, on PostgreSQL."""

    def __init__(self) -> None:
        self.plan = ""

    def __call__(self, execute, sql, params, many, context):
        postgres = context["connection"].vendor == "postgresql"
        if not self.plan and postgres and sql.lstrip().startswith("SELECT") and "FOR UPDATE" in sql:
            with context["connection"].connection.cursor() as cursor:
                cursor.execute("EXPLAIN ANALYZE " + sql, params)
                self.plan = "\n".join(row[0] for row in cursor.fetchall())
        return execute(sql, params, many, context)


# --- driving it (bench/run.py) ----------------------------------------------------------------


def claim_rows(postgres: Postgres, quick: bool) -> list[Row]:
    """One row per claim: its time at 100,000 finished events against 1,000, each size in
    a database of this run (made, migrated, filled, dropped). The two are timed in turns,
    several times, so that a busy moment of the machine falls on both alike."""
    turns, rounds = (2, 20) if quick else (3, 100)
    databases = {size: database_name(f"claims_{size}") for size in (SMALL, LARGE)}
    try:
        progress("sync queue claims: migrating a database")
        env = {SMALL: node_env(postgres.create(databases[SMALL]))}
        run_task(env[SMALL], "prepare")
        env[LARGE] = node_env(postgres.create(databases[LARGE], template=databases[SMALL]))
        best: dict[int, dict] = {}
        for turn in range(turns):
            for size in (SMALL, LARGE):
                doing = "filling and timing" if turn == 0 else "timing"
                progress(f"sync queue claims: {size:,} finished events in each table, {doing}")
                figures = json.loads(
                    run_task(env[size], "claims", str(size), str(rounds), timeout=1800)
                )
                earlier = best.get(size, figures)
                best[size] = {c: _faster(earlier[c], figures[c]) for c in CLAIMS}
    finally:
        for database in databases.values():
            postgres.drop(database)
    return [
        Row(
            row_name,
            f"same claim at {SMALL:,}",
            best[LARGE][claim]["seconds"],
            best[SMALL][claim]["seconds"],
            1.5,
            note=_note(best[LARGE][claim], best[SMALL][claim], turns * rounds),
        )
        for row_name, claim in zip(NAMES, CLAIMS, strict=True)
    ]


def _note(large: dict, small: dict, rounds: int) -> str:
    whole = large["call_seconds"] / small["call_seconds"]
    return (
        f"{large['queries']} queries, each best of {rounds}; {large['claimed']} claimed; "
        f"whole call {whole:.2f}x; {plan_summary(large['plan'])}"
    )


def _faster(one: dict, other: dict) -> dict:
    """The better of two turns' figures of a claim."""
    better = one if one["seconds"] <= other["seconds"] else other
    return {**better, "call_seconds": min(one["call_seconds"], other["call_seconds"])}


SCAN = re.compile(
    r"(Seq Scan|Index Only Scan|Index Scan|Bitmap Index Scan)(?: using (\w+))? on (\w+)"
)
# The event tables and the names of their indexes (Django's and the models' own).
EVENT_NAMES = ("sync_syncevent", "sync_inboundevent", "sync_event_", "inbound_")


def plan_summary(plan: str) -> str:
    """How the plan reads the event tables: the index of each scan, or a sequential scan
    named as such (what makes a claim slow as history grows)."""
    scans = []
    for kind, index, table in SCAN.findall(plan):
        if kind == "Seq Scan" and table.startswith(EVENT_NAMES):
            scans.append(f"SEQ SCAN of {table}")
        elif (index or table).startswith(EVENT_NAMES):
            scans.append(index or table)  # a bitmap scan's line names only its index
    return "plan: " + (", ".join(dict.fromkeys(scans)) or "no event table read")
