"""Work the benchmarks do inside a node's own Django, against its database:
`python -m bench.tasks TASK [ARGS]` with the node's environment (bench/live.py).

    prepare              migrate, General Settings, the admin login (a template database)
    connections N        N connections of every status, mode and role, with their events
    invitations N        N pending connections with an invitation each; prints, as JSON,
                         a valid accept body per code (a fresh acceptor key pair each)
    deliver N ROUNDS URL times the worker delivering N queued notifications to the peer
                         at URL, and the same POSTs sent with a bare pooled httpx client
    claims N ROUNDS      adds finished sync events (sent and received) until each table
                         holds N, beside a handful waiting; prints, as JSON, the best time
                         of each claim of the sync queue over ROUNDS and its query plan
"""

from __future__ import annotations

import io
import json
import random
import secrets
import sys
import time
import uuid
from datetime import timedelta

import django

django.setup()

# Django is set up above: the project's modules can be imported from here on.
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection as db  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.live import PASSWORD, USERNAME  # noqa: E402


def prepare() -> None:
    call_command("migrate", interactive=False, verbosity=0)
    call_command("setup_node", stdout=io.StringIO())
    user = get_user_model().objects.get(username=USERNAME)
    user.is_staff = True
    user.set_password(PASSWORD)
    user.save()


# The mix a node with many connections has: mostly active ones, some pending (waiting for
# the other side to accept or to confirm), some switched off, a few in error.
STATUS_WEIGHTS = {"active": 70, "pending": 12, "deactivated": 10, "error": 8}
PEERS = ["globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "soylent"]


def seed_connections(count: int) -> None:
    """`count` connections and two or three events each, inserted in bulk."""
    from connections.models import Connection, ConnectionEvent, EventKind

    rng = random.Random(20251128)  # the same mix at every size: page 1 looks alike
    admin = get_user_model().objects.get(username=USERNAME)
    now = timezone.now()
    connections, events = [], []
    for i in range(count):
        status = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
        role = "source" if rng.random() < 0.6 else "destination"
        if role == "destination" and status == "pending":
            status = "active"  # a destination's side is stored once it is paired
        # A pending source side either waits for an acceptor or for its confirmation.
        paired = not (status == "pending" and rng.random() < 0.6)
        private = not paired and rng.random() < 0.3  # "I don't have a URL"
        peer = PEERS[i % len(PEERS)]
        created = now - timedelta(minutes=7 * i + rng.random() * 5)
        activated = created + timedelta(minutes=3) if status != "pending" else None
        connection = Connection(
            name=f"{peer.title()} service desk {i:05d}",
            description=f"Incidents and changes shared with {peer.title()}'s service desk.",
            mode="script" if rng.random() < 0.7 else "basic",
            role=role,
            local_short_name="desk-a",
            remote_short_name=f"{peer}-{i % 97}",
            remote_url="" if private else f"https://{peer}-{i % 97}.example.com",
            remote_uid=uuid.uuid4() if paired else None,
            remote_connection_id=str(uuid.uuid4()) if paired else "",
            remote_platform="xurrent" if paired else "",
            status=status,
            status_reason="The remote node does not answer." if status == "error" else "",
            remote_status="active" if status == "active" else "",
            remote_status_at=activated,
            shared_secret=secrets.token_urlsafe(32) if paired else "",
            created_at=created,
            activated_at=activated,
            created_by=admin if role == "source" else None,
        )
        connections.append(connection)
        kinds = [(EventKind.CREATED, "", "pending")]
        if paired:
            kinds.append((EventKind.ACCEPTED, "pending", "pending"))
        if status != "pending":
            kinds.append((status if status != "active" else EventKind.ACTIVATED, "", status))
        for n, (kind, before, after) in enumerate(kinds):
            events.append(
                ConnectionEvent(
                    connection=connection,
                    connection_name=connection.name,
                    kind=kind,
                    actor_user=admin if n == 0 and role == "source" else None,
                    actor_remote=connection.remote_short_name if n else "",
                    from_status=before,
                    to_status=after,
                    message=f"{kind} (bench)",
                    created_at=created + timedelta(minutes=n),
                )
            )
    Connection.objects.bulk_create(connections, batch_size=1000)
    ConnectionEvent.objects.bulk_create(events, batch_size=2000)
    with db.cursor() as cursor:
        cursor.execute("ANALYZE")  # the statistics autovacuum would have made by now


def issue_invitations(count: int) -> None:
    """Pending connections with an invitation each, issued the product's way."""
    from invitations import keys
    from invitations.services.issuing import initiate_connection

    destination_uid = str(uuid.uuid4())
    bodies = []
    for i in range(count):
        _connection, _invitation, code = initiate_connection(
            name=f"Accept bench {i:05d}",
            mode="script",
            local_short_name="desk-a",
            remote_short_name="desk-b",
            description="Incidents between the two service desks.",
            remote_url="https://desk-b.example.com",
            remote_uid=destination_uid,
        )
        acceptor = {
            "uid": destination_uid,
            "url": "https://desk-b.example.com",
            "short_name": "desk-b",
            "platform": "xurrent",
            "version": "1.0.0",
            "connection_id": str(uuid.uuid4()),
            "public_key": keys.public_key_text(keys.new_private_key()),
        }
        bodies.append({"code": code, "acceptor": acceptor})
    print(json.dumps(bodies))


def time_delivery(count: int, rounds: int, peer_url: str) -> None:
    """Best time of `rounds` rounds: the worker's delivery of `count` queued notifications,
    and bare POSTs of the same bodies with the same tokens (signed beforehand, untimed)."""
    import httpx

    from connections.auth import sign_token
    from connections.models import PeerNotification
    from connections.serializers import StatusReportSerializer
    from connections.services import outbox
    from nodes.models import GeneralSettings

    def queue() -> list[PeerNotification]:
        now = timezone.now()
        return PeerNotification.objects.bulk_create(
            PeerNotification(
                connection_name=f"Delivery bench {i}",
                status="deactivated",
                reason="Switched off for the night.",
                changed_at=now,
                remote_url=peer_url,
                remote_uid=uuid.uuid4(),
                remote_connection_id=str(uuid.uuid4()),
                signing_key=secrets.token_urlsafe(32),
                next_attempt_at=now,
            )
            for i in range(count)
        )

    def deliver() -> float:
        started = time.perf_counter()
        report = outbox.deliver_pending_notifications()
        took = time.perf_counter() - started
        if report.delivered != count:
            raise SystemExit(f"delivered {report.delivered} of {count}: {report}")
        return took

    def post_all(raw: httpx.Client, calls: list[tuple[str, dict, dict]]) -> float:
        started = time.perf_counter()
        for url, body, headers in calls:
            if raw.post(url, json=body, headers=headers).status_code != 200:
                raise SystemExit(f"the peer refused {url}")
        return time.perf_counter() - started

    issuer = str(GeneralSettings.load().uid)
    subject, baseline = [], []
    with httpx.Client(timeout=10) as raw:
        for n in range(rounds):
            queued = queue()
            calls = [
                (
                    f"{peer_url}/api/v1/connections/{n.remote_connection_id}/status/",
                    StatusReportSerializer(n).data,
                    {
                        "Authorization": "Bearer "
                        + sign_token(
                            key=n.signing_key,
                            issuer=issuer,
                            audience=str(n.remote_uid),
                            connection_id=n.remote_connection_id,
                        )
                    },
                )
                for n in queued
            ]
            # Which goes first changes every round: neither always finds the machine
            # (caches, the peer's threads) as the other left it.
            if n % 2:
                baseline.append(post_all(raw, calls))
                subject.append(deliver())
            else:
                subject.append(deliver())
                baseline.append(post_all(raw, calls))
    print(
        json.dumps(
            {
                "subject": min(subject),
                "baseline": min(baseline),
                "ratios": sorted(a / b for a, b in zip(subject, baseline, strict=True)),
                "most_at_once": outbox.SEND_AT_ONCE,
            }
        )
    )


def main(argv: list[str]) -> None:
    task, *args = argv
    if task == "prepare":
        prepare()
    elif task == "connections":
        seed_connections(int(args[0]))
    elif task == "invitations":
        issue_invitations(int(args[0]))
    elif task == "deliver":
        time_delivery(int(args[0]), int(args[1]), args[2])
    elif task == "claims":
        from bench.sync_claims import fill_and_time

        print(json.dumps(fill_and_time(int(args[0]), int(args[1]))))
    else:
        raise SystemExit(f"unknown task {task!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
