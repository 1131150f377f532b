"""Default sync rules, Basic mode's fixed rules, and the samples a test run starts from.

The defaults follow Exalate's samples for Xurrent: outgoing copies the usual fields of
the request into the replica; incoming applies them, maps the other side's status and
priority names to Xurrent's values, and on the first sync fills in what Xurrent needs to
create a request.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_OUTGOING = """\
# Outgoing sync: what this side sends to the other side.
# `entity` is the local Xurrent request; `replica` is what the other side receives.
# Xurrent has no priority field: Exalate's priority is the request's impact.
replica.key = entity.key
replica.summary = entity.summary
replica.description = entity.description
replica.status = entity.status
replica.priority = entity.priority
replica.resolution = entity.resolution
replica.category = entity.category
replica.assignee = entity.assignee
replica.reporter = entity.reporter
replica.labels = entity.labels

# Internal notes, and the files attached to them, stay in this Xurrent account.
replica.comments = [c for c in entity.comments if not c.internal]
replica.attachments = [a for a in entity.attachments if not a.internal]
"""

DEFAULT_INCOMING = """\
# Incoming sync: how this side applies what the other side sent.
# `replica` is what arrived; `entity` is the local Xurrent request;
# `first_sync` is True when the request does not exist here yet.
if first_sync:
    # Xurrent needs a team to create a request. "Service Desk" is a team of this
    # Xurrent account given by name: change it to one of your teams, by name or by id
    # (entity.team = 12). A name that matches no team stops the sync with an error.
    entity.team = "Service Desk"
    entity.category = "incident"
    entity.priority = "low"

entity.summary = replica.summary
entity.description = replica.description
entity.labels = replica.labels

# The other side's status names (left) and the Xurrent status each one becomes.
# A name that is not listed leaves the local status as it is. Xurrent's own statuses
# (the other side is another Xurrent account) are taken as they are.
status_map = {
    "Open": "assigned",
    "To Do": "assigned",
    "In Progress": "in_progress",
    "Pending": "waiting_for",
    "Waiting for customer": "waiting_for_customer",
    "Resolved": "completed",
    "Done": "completed",
}
xurrent_statuses = [
    "assigned", "accepted", "in_progress", "waiting_for", "waiting_for_customer", "completed",
]
if replica.status in xurrent_statuses:
    entity.status = replica.status
else:
    entity.status = status_map.get(replica.status, entity.status)
# Xurrent needs a resolution (completion reason) on a completed request: the other
# side's when it sent one, else the one this request has, else "solved".
if entity.status == "completed":
    entity.resolution = replica.resolution or entity.resolution or "solved"

# The other side's priorities (left) and the Xurrent impact each one becomes.
priority_map = {
    "Highest": "top",
    "High": "high",
    "Medium": "medium",
    "Low": "low",
    "Lowest": "low",
    # Another Xurrent account sends its impacts as they are.
    "top": "top",
    "high": "high",
    "medium": "medium",
    "low": "low",
}
entity.priority = priority_map.get(replica.priority, entity.priority)

entity.comments = merge_comments(entity.comments, replica.comments)
entity.attachments = merge_attachments(entity.attachments, replica.attachments)
"""

# Basic mode: fixed rules, the same on every connection, shown read-only.
# The team Basic mode creates requests in, unless this node's Xurrent settings name
# another (GeneralSettings.basic_team).
BASIC_TEAM = "Service Desk"


def basic_team_value(team: str) -> str | int:
    """The team as the Basic rules set it: a number is an id, anything else a name."""
    team = team.strip() or BASIC_TEAM
    return int(team) if team.isdigit() else team


def basic_fields(team: str = BASIC_TEAM) -> tuple[tuple[str, str], ...]:
    value = basic_team_value(team)
    which = f"the team with id {value}" if isinstance(value, int) else f"the team “{value}”"
    return (
        (
            "Team",
            f"A request that comes from the other side is created as an incident of low "
            f"impact in {which} of this Xurrent account (Xurrent needs a team; it is set "
            "in this node's Xurrent settings, “Team for new requests (Basic mode)”).",
        ),
        *BASIC_SYNCED,
    )


BASIC_SYNCED = (
    ("Summary", "The subject of the request, both ways."),
    ("Description", "The request's first note, both ways."),
    ("Comments", "Public notes, both ways: new ones are added, edited ones updated."),
    ("Attachments", "Files on public notes, both ways: new ones are added."),
)

BASIC_OUTGOING = """\
replica.key = entity.key
replica.summary = entity.summary
replica.description = entity.description
replica.comments = [c for c in entity.comments if not c.internal]
replica.attachments = [a for a in entity.attachments if not a.internal]
"""


def basic_incoming(team: str = BASIC_TEAM) -> str:
    """Basic mode's incoming rules, creating requests in `team` (a name, or an id)."""
    return f"""\
if first_sync:
    entity.team = {basic_team_value(team)!r}
    entity.category = "incident"
    entity.priority = "low"
entity.summary = replica.summary
entity.description = replica.description
entity.comments = merge_comments(entity.comments, replica.comments)
entity.attachments = merge_attachments(entity.attachments, replica.attachments)
"""


BASIC_FIELDS = basic_fields()
BASIC_INCOMING = basic_incoming()

# A Xurrent request as the Requests API returns it, with its notes (Notes API).
SAMPLE_REQUEST: dict[str, Any] = {
    "id": 70412,
    "subject": "VPN drops every few minutes when working from home",
    "category": "incident",
    "impact": "medium",
    "status": "in_progress",
    "urgent": False,
    "team": {"id": 38, "name": "Network Operations"},
    "member": {"id": 812, "name": "Priya Raman"},
    "requested_by": {"id": 1204, "name": "Tomás Alvarez"},
    "requested_for": {"id": 1204, "name": "Tomás Alvarez"},
    "service_instance": {"id": 91, "name": "Remote Access VPN"},
    "template": {"id": 17, "name": "Report a connectivity problem"},
    "custom_fields": [{"id": "location", "value": "Home office"}],
    "created_at": "2025-03-04T08:12:31+01:00",
    "updated_at": "2025-03-04T10:47:02+01:00",
    "notes": [
        {
            "id": 5501,
            "person": {"id": 1204, "name": "Tomás Alvarez"},
            "created_at": "2025-03-04T08:12:31+01:00",
            "text": "<p>Since this morning the VPN disconnects every 5 to 10 minutes. "
            "The client log is attached.</p>",
            "internal": False,
            "attachments": [
                {"id": 7781, "name": "vpn-client.log", "size": 18342, "content_type": "text/plain"}
            ],
        },
        {
            "id": 5502,
            "person": {"id": 812, "name": "Priya Raman"},
            "created_at": "2025-03-04T09:05:10+01:00",
            "text": "<p>Thanks, Tomás. Does it also happen on a wired connection?</p>",
            "internal": False,
            "attachments": [],
        },
        {
            "id": 5503,
            "person": {"id": 812, "name": "Priya Raman"},
            "created_at": "2025-03-04T10:47:02+01:00",
            "text": "<p>Gateway vpn-gw-02 logs MTU errors; asked the ISP to check.</p>",
            "internal": True,
            "attachments": [
                {"id": 7790, "name": "gw02-mtu.txt", "size": 2210, "content_type": "text/plain"}
            ],
        },
    ],
}

# A replica as another node (here a Jira node) would send it.
SAMPLE_REPLICA: dict[str, Any] = {
    "key": "SUP-2291",
    "summary": "VPN drops every few minutes when working from home",
    "description": "<p>Since this morning the VPN disconnects every 5 to 10 minutes.</p>",
    "status": "In Progress",
    "priority": "High",
    "category": "incident",
    "assignee": {"id": "lfischer", "name": "Lena Fischer"},
    "reporter": {"id": "talvarez", "name": "Tomás Alvarez"},
    "labels": ["vpn", "remote-work"],
    "comments": [
        {
            "id": "10931",
            "author": "Lena Fischer",
            "body": "<p>Our firewall sees the tunnel renegotiate every 300 seconds.</p>",
            "created": "2025-03-04T11:02:00+01:00",
        }
    ],
    "attachments": [
        {
            "id": "20417",
            "filename": "tunnel-trace.pcap",
            "size": 90211,
            "content_type": "application/vnd.tcpdump.pcap",
        }
    ],
}


def as_json(data: Any) -> str:
    """Sample data as the page shows it for editing."""
    return json.dumps(data, indent=2, ensure_ascii=False)
