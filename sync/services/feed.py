"""The public side of private pull (DESIGN.md §11 step 5): events for a peer that cannot
be called wait in a feed, numbered per connection, until the peer asks for them with
`GET …/sync/?after=<cursor>`. Their results come back by the usual `POST …/sync/ack/`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from connections.models import Connection
from connections.services.outbox import hand_over
from sync.models import (
    FINAL_STATES,
    EventState,
    PullFeed,
    SyncEvent,
    Twin,
    TwinStatus,
)
from sync.serializers import PROTOCOL
from sync.services.receive import Refused, _check_active

# Events served in one answer; `more` says when there are others after them.
PAGE = 100
# Delivered events stay in the feed this long; a cursor from before gets 410.
KEEP = timedelta(days=7)


class CursorExpired(Refused):
    """410 cursor_expired: the events after this cursor are gone; start again from
    `cursor` (a fresh state of every twin follows it)."""

    def __init__(self, cursor: int, detail: str):
        super().__init__(410, "cursor_expired", detail)
        self.cursor = cursor


def peer_pulls(connection: Connection) -> bool:
    """The peer of `connection` cannot be called (it gave no URL: a private network), so
    its events wait for it to pull them."""
    return connection.is_paired and not connection.remote_url and not connection.is_local


def next_pull_cursor(connection: Connection) -> int | None:
    """The next place in the connection's feed, for an event stored in the current
    transaction; None when the peer is called instead.

    The feed's row stays locked until the transaction ends, so the cursors commit in
    their order: a peer that read up to N never finds a cursor below N later.
    """
    cursors = next_pull_cursors(connection, 1)
    return cursors[0] if cursors else None


def next_pull_cursors(connection: Connection, count: int) -> list[int]:
    """`count` places in a row in the connection's feed (`next_pull_cursor` for a batch
    of events stored in one transaction), in order; none when the peer is called."""
    if not peer_pulls(connection) or count < 1:
        return []
    PullFeed.objects.get_or_create(connection_id=connection.pk)
    feed = PullFeed.objects.select_for_update().get(connection_id=connection.pk)
    first = feed.last_cursor + 1
    PullFeed.objects.filter(pk=feed.pk).update(last_cursor=feed.last_cursor + count)
    return list(range(first, first + count))


def parse_after(value: Any) -> int:
    """The `after` of a pull: a whole number ≥ 0 (0: from the start)."""
    text = "0" if value is None else str(value).strip()
    if not text.isdigit() or len(text) > 18:
        raise Refused(
            400,
            "invalid_request",
            "`after` must be the last cursor this side stored: a whole number, 0 or more.",
            {"after": [f"Not a whole number of 0 or more: {str(value)[:40]!r}."]},
        )
    return int(text)


def events_after(connection: Connection, after: Any) -> dict:
    """The answer to a pull: the events after cursor `after`, in order.

    Asking after N says every event up to N is stored on the other side: those are
    marked sent (their results follow by ack). Raises Refused for a bad `after` (400),
    an inactive connection (409 connection_inactive) and CursorExpired (410).
    """
    cursor = parse_after(after)
    _check_active(connection)
    if not peer_pulls(connection):
        # This side has the peer's URL and sends it everything: nothing waits here.
        return {"protocol": PROTOCOL, "events": [], "cursor": cursor, "more": False}
    feed = PullFeed.objects.filter(connection=connection).first()
    if feed is None:
        feed = PullFeed(connection=connection)
    if cursor < feed.expired_through or cursor > feed.last_cursor:
        restart = queue_fresh_states(connection)
        raise CursorExpired(
            restart,
            f"Cursor {cursor} is not in this side's feed any more (events are kept "
            f"{KEEP.days} days): start again after {restart}; a fresh state of every "
            "synced request follows.",
        )
    _mark_delivered(connection, cursor)
    events, last = _page(connection, cursor)
    return {
        "protocol": PROTOCOL,
        "events": [{**event.wire_body(), "cursor": event.pull_cursor} for event in events],
        "cursor": last,
        "more": last < feed.last_cursor,
    }


def answer_pull(connection: Connection, after: Any) -> tuple[int, dict]:
    """The HTTP status and body of the answer to a pull: the events after `after`
    (`events_after`) or the refusal. Either way the body carries, as `side`, this side's
    newest status report when it has one (`outbox.hand_over`): the puller cannot be
    called, so this is how it hears that this side was deactivated or activated again."""
    try:
        status, body = 200, events_after(connection, after)
    except CursorExpired as exc:
        status, body = exc.status, {"code": exc.code, "detail": exc.detail, "cursor": exc.cursor}
    except Refused as exc:
        status, body = exc.status, exc.body()
    if (report := hand_over(connection)) is not None:
        body["side"] = report
    return status, body


def _mark_delivered(connection: Connection, cursor: int) -> None:
    SyncEvent.objects.filter(
        connection=connection, pull_cursor__lte=cursor, state=EventState.QUEUED
    ).update(state=EventState.SENT, sent_at=timezone.now())


def _page(connection: Connection, cursor: int) -> tuple[list[SyncEvent], int]:
    """Up to PAGE events after `cursor` and the cursor to ask after next time.

    An event superseded before it was delivered is left out (a newer one carries its
    state). An event of a twin held on this side (blocked until Retry or Resolve) is not
    served yet, and the next cursor stays below it, so it is served once released; the
    events after it are served meanwhile and again later (the inbox keeps each once).
    """
    rows = list(
        SyncEvent.objects.filter(connection=connection, pull_cursor__gt=cursor)
        .select_related("twin")
        .order_by("pull_cursor")[:PAGE]
    )
    served, held_below = [], None
    for event in rows:
        if event.state == EventState.SUPERSEDED and event.sent_at is None:
            continue
        if not event.is_final and event.twin.status not in (TwinStatus.OPEN, TwinStatus.CLOSED):
            if held_below is None:
                held_below = event.pull_cursor - 1
            continue
        served.append(event)
    last = rows[-1].pull_cursor if rows else cursor
    if held_below is not None:
        last = min(last, held_below)
    return served, last


def queue_fresh_states(connection: Connection) -> int:
    """After an expired cursor: queue the current state of every open twin again (what
    the other side may have missed), and return the cursor to start again after."""
    with transaction.atomic():
        feed, _ = PullFeed.objects.select_for_update().get_or_create(connection=connection)
        restart = feed.expired_through
        twins = Twin.objects.filter(
            connection=connection, status=TwinStatus.OPEN, baseline__isnull=False
        )
        for twin in twins.select_for_update():
            _queue_state(connection, twin)
    return restart


def _queue_state(connection: Connection, twin: Twin) -> None:
    """A new event carrying the twin's last queued replica, with no `previous`: the other
    side applies it whole."""
    twin.last_seq_sent += 1
    twin.events.filter(state=EventState.QUEUED).update(
        state=EventState.SUPERSEDED,
        finished_at=timezone.now(),
        last_error="The other side's cursor expired: a fresh state was queued.",
    )
    SyncEvent.objects.create(
        connection=connection,
        twin=twin,
        seq=twin.last_seq_sent,
        replica=twin.baseline,
        previous=None,
        pull_cursor=next_pull_cursor(connection),
    )
    Twin.objects.filter(pk=twin.pk).update(last_seq_sent=twin.last_seq_sent)


def expire_old_events(*, keep: timedelta = KEEP) -> int:
    """Stop serving events finished more than `keep` ago: each feed's window moves up to
    the first event that is still waiting for its result or finished recently. Returns
    how many feeds moved. The events themselves stay (the twin's history shows them)."""
    cutoff = timezone.now() - keep
    moved = 0
    for feed in PullFeed.objects.all():
        events = SyncEvent.objects.filter(
            connection_id=feed.connection_id, pull_cursor__gt=feed.expired_through
        )
        kept = events.exclude(state__in=FINAL_STATES, finished_at__lt=cutoff)
        first_kept = kept.aggregate(low=Min("pull_cursor"))["low"]
        if first_kept is not None:
            through = first_kept - 1
        else:
            through = events.aggregate(high=Max("pull_cursor"))["high"] or 0
        if through > feed.expired_through:
            PullFeed.objects.filter(pk=feed.pk).update(expired_through=through)
            moved += 1
    return moved
