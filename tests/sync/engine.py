"""Two sides of a connection in one test database, each with its own Xurrent account.

Both sides are on this node (a local connection: events and acks go in-process), but
each side's engine talks to its own FakeXurrent, so the flow is the one between two
nodes: A's request → A's outgoing script → event → B's incoming script → B's Xurrent.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from connections.models import Connection
from nodes.models import GeneralSettings
from sync.services.apply import apply_inbound
from sync.services.gateway import use_gateway
from sync.services.produce import produce_changes
from sync.services.rules import save_rules
from sync.services.scope import add_trigger, note_changed_requests
from sync.services.send import send_acks, send_events
from tests.sync.fake_xurrent import FakeXurrent

# The default rules, plus what the simulated accounts need to create a request (a team)
# and Xurrent's own status and impact names passed through as they are.
INCOMING = """\
if first_sync:
    entity.category = replica.category or "incident"
    entity.team = {"id": 1, "name": "Service Desk"}
    entity.priority = "low"
entity.summary = replica.summary
entity.description = replica.description
if replica.priority in ("low", "medium", "high", "top"):
    entity.priority = replica.priority
entity.comments = merge_comments(entity.comments, replica.comments)
entity.attachments = merge_attachments(entity.attachments, replica.attachments)
"""
OUTGOING = """\
replica.key = entity.key
replica.summary = entity.summary
replica.description = entity.description
replica.priority = entity.priority
replica.category = entity.category
replica.comments = [c for c in entity.comments if not c.internal]
replica.attachments = [a for a in entity.attachments if not a.internal]
"""


def make_local_pair(name: str = "A to B") -> tuple[Connection, Connection]:
    """Both sides of an active local connection (this node on both ends)."""
    uid = GeneralSettings.load().uid
    secret = secrets.token_urlsafe(32)
    a_id, b_id = uuid.uuid4(), uuid.uuid4()
    common = {
        "mode": "script",
        "remote_uid": uid,
        "remote_platform": "xurrent",
        "status": "active",
        "shared_secret": secret,
        "remote_url": "",
    }
    a = Connection.objects.create(
        id=a_id,
        name=name,
        role="source",
        local_short_name="side-a",
        remote_short_name="side-b",
        remote_connection_id=str(b_id),
        **common,
    )
    b = Connection.objects.create(
        id=b_id,
        name=f"{name} (other side)",
        role="destination",
        local_short_name="side-b",
        remote_short_name="side-a",
        remote_connection_id=str(a_id),
        **common,
    )
    return a, b


@dataclass
class Side:
    connection: Connection
    xurrent: FakeXurrent

    def notice(self, *request_ids: int) -> None:
        """What a webhook or a poll would tell the engine: these requests changed."""
        with use_gateway(self.xurrent):
            note_changed_requests(request_ids)

    def produce(self):
        return produce_changes(gateway=self.xurrent, connection=self.connection)

    def send(self):
        return send_events(connection=self.connection)

    def apply(self):
        return apply_inbound(gateway=self.xurrent, connection=self.connection)

    def acks(self) -> int:
        return send_acks(connection=self.connection)

    def rules(self, outgoing: str = OUTGOING, incoming: str = INCOMING) -> None:
        save_rules(self.connection, outgoing, incoming)

    def trigger(self, query: str = "category=incident"):
        return add_trigger(self.connection, query)


@dataclass
class Pair:
    a: Side
    b: Side

    def sync(self, rounds: int = 10) -> int:
        """Run both workers until nothing is left to do; returns the rounds that did work.
        Each side's own Xurrent writes are noticed as its webhooks would tell them."""
        for busy_rounds in range(rounds):
            before = {id(s): dict(s.xurrent.writes) for s in (self.a, self.b)}
            work = 0
            for side in (self.a, self.b):
                work += side.produce().events
                work += side.send().attempted
                work += side.apply().attempted
                work += side.acks()
            for side in (self.a, self.b):
                if dict(side.xurrent.writes) != before[id(side)]:
                    # The engine's own writes come back as webhooks: notice them all.
                    side.notice(*(r["id"] for r in side.xurrent.all_requests()))
            if not work:
                return busy_rounds
        raise AssertionError(f"still busy after {rounds} rounds")
