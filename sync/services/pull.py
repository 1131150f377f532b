"""The private side of private pull (DESIGN.md §11 step 5): this node is in a private
network, so peers cannot call it. Its worker asks each peer for the events waiting for it
(`GET …/sync/?after=<cursor>`), keeps them in its inbox exactly as pushed ones, and the
usual apply and ack steps do the rest. Its own events still go out by push.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connections.auth import token_for
from connections.models import Connection, RemoteStatus, Status
from connections.services.actions import record_handed_over_status
from nodes import client
from nodes.models import GeneralSettings
from sync.models import ErrorKind, ErrorPlace, InboundEvent, PullPosition
from sync.serializers import PROTOCOL
from sync.services.errors import record_error, resolve_errors
from sync.services.feed import answer_pull
from sync.services.receive import Refused, receive_event

logger = logging.getLogger(__name__)

# Longest wait between two pulls after failures; while the other side's connection is
# inactive (it answers 409 connection_inactive).
BACKOFF_MAX = timedelta(minutes=5)
HOLD_MAX = timedelta(minutes=1)


def pulls_from_peers() -> bool:
    """This node cannot be called (not public: it gave its peers no URL), so it pulls."""
    node = GeneralSettings.load()
    return not node.public or not node.base_url


def pulling_connections():
    """Active connections whose peer can be called (this side pulls from it)."""
    return (
        Connection.objects.filter(status=Status.ACTIVE, remote_uid__isnull=False)
        .exclude(remote_connection_id="")
        .exclude(remote_url="")
    )


def pull_events(*, force: bool = False, connection: Connection | None = None) -> int:
    """Pull from every peer whose pull is due (all of them with `force`: this side just
    sent something, and the answer may be waiting). Returns how many events were stored."""
    if connection is None and not pulls_from_peers():
        return 0
    targets = [connection] if connection is not None else list(pulling_connections())
    stored = 0
    for target in targets:
        position, _ = PullPosition.objects.get_or_create(connection=target)
        if force or _claim(position):
            stored += pull_once(target, position)
    return stored


def _claim(position: PullPosition) -> bool:
    """Take this pull if it is due and no other worker took it (several workers may run
    against one database): pushing the next pull ahead is the claim."""
    now = timezone.now()
    return bool(
        PullPosition.objects.filter(pk=position.pk, next_pull_at__lte=now).update(
            next_pull_at=now + _interval()
        )
    )


def pull_once(connection: Connection, position: PullPosition) -> int:
    """One pull from the peer of `connection`; returns how many events were stored."""
    try:
        status, answer = _get(connection, position.after)
    except client.NodeError as exc:
        _pull_later(connection, position, ErrorKind.NETWORK, exc.message)
        return 0
    code = answer.get("code") if isinstance(answer, dict) else None
    if isinstance(answer, dict) and "side" in answer:
        # What the other side did with its side (deactivated, activated): it cannot
        # tell this side any other way.
        record_handed_over_status(connection, answer["side"])
    if code == "unknown_connection":
        # The other side no longer knows the connection: it was deleted there.
        connection.apply_remote_status(RemoteStatus.DELETED, changed_at=timezone.now())
        return 0
    if status == 200 and isinstance(answer, dict) and isinstance(answer.get("events"), list):
        return _take_page(connection, position, answer)
    if status == 410 and code == "cursor_expired":
        _restart(position, answer.get("cursor"))
        return 0
    if status == 409 and code == "connection_inactive":
        # The other side deactivated its side: nothing to pull meanwhile (no error); ask
        # again within a minute, so its events flow soon after it is active again.
        _wait(position, failed=True, longest=HOLD_MAX)
        return 0
    detail = answer.get("detail", "") if isinstance(answer, dict) else ""
    message = f"The other side answered the pull with HTTP {status} ({code or 'no code'}) {detail}"
    _pull_later(connection, position, ErrorKind.PEER, message.strip())
    return 0


def _get(connection: Connection, after: int) -> tuple[int, Any]:
    if connection.is_local:
        return _get_local(connection, after)
    path = f"/api/v1/connections/{connection.remote_connection_id}/sync/?after={after}"
    headers = {"Authorization": f"Bearer {token_for(connection)}"}
    return client.request("GET", connection.remote_url, path, headers=headers)


def _get_local(connection: Connection, after: int) -> tuple[int, Any]:
    """Both sides on this node: ask the other side in-process."""
    peer = connection.local_peer()
    if peer is None:
        return 404, {"code": "unknown_connection", "detail": "The other side is gone."}
    return answer_pull(peer, after)


def _take_page(connection: Connection, position: PullPosition, answer: dict) -> int:
    """Store the page's events in the inbox, in order, and move the cursor past them in
    the same transaction. An event this side refuses gets its result at once (as an ack),
    so the other side is never left waiting for it."""
    cursor = position.after
    stored = 0
    with transaction.atomic():
        for body in answer["events"]:
            if not isinstance(body, dict):
                continue
            event = {key: value for key, value in body.items() if key != "cursor"}
            stored += _store(connection, event)
            if isinstance(body.get("cursor"), int):
                cursor = max(cursor, body["cursor"])
        if isinstance(answer.get("cursor"), int) and answer["cursor"] >= 0:
            cursor = answer["cursor"]
        more = bool(answer.get("more"))
        PullPosition.objects.filter(pk=position.pk).update(
            after=cursor,
            pulled_at=timezone.now(),
            next_pull_at=timezone.now() + (timedelta(0) if more else _interval()),
            failures=0,
        )
    position.after = cursor
    resolve_errors(connection=connection, place=ErrorPlace.PULL, twin_level=False)
    return stored


def _store(connection: Connection, event: dict) -> int:
    """Keep one pulled event in the inbox; 0 when it is there already (served again)."""
    if InboundEvent.objects.filter(connection=connection, uuid=str(event.get("event"))).exists():
        return 0
    try:
        answer = receive_event(connection, event)
    except Refused as exc:
        _refused(connection, event, exc)
        return 0
    if answer.get("state") != "queued":
        # Pushed, this final answer would have been the 202; pulled, it goes as an ack.
        InboundEvent.objects.filter(connection=connection, uuid=answer["event"]).update(
            ack_pending=True, ack_next_try_at=timezone.now()
        )
    return 1


def _refused(connection: Connection, event: dict, exc: Refused) -> None:
    """Tell the other side at once why its event cannot be taken here: a twin closed here
    (its unexalate reaches the other side by push) ends the event as superseded; anything
    else as failed, with the reason, which the other side shows."""
    from sync.services.send import call_peer

    state = "superseded" if exc.code == "twin_unexalated" else "failed"
    body = {"protocol": PROTOCOL, "event": str(event.get("event")), "state": state}
    if state == "failed":
        body["error"] = f"Refused by this side ({exc.code}): {exc.detail}"
    try:
        call_peer(connection, "/sync/ack/", body)
    except client.NodeError as error:
        logger.warning("Result of pulled event %s not delivered: %s", body["event"], error)


def _restart(position: PullPosition, cursor: Any) -> None:
    """The other side's feed no longer has our cursor: start again where it says (it
    queued a fresh state of every twin after it)."""
    restart = cursor if isinstance(cursor, int) and cursor >= 0 else 0
    PullPosition.objects.filter(pk=position.pk).update(
        after=restart, next_pull_at=timezone.now(), failures=0
    )
    position.after = restart


def _interval() -> timedelta:
    return timedelta(seconds=settings.SYNC_PULL_SECONDS)


def _wait(position: PullPosition, *, failed: bool, longest: timedelta = BACKOFF_MAX) -> timedelta:
    failures = position.failures + 1 if failed else 0
    wait = _interval() if not failed else min(_interval() * 2 ** min(failures, 8), longest)
    PullPosition.objects.filter(pk=position.pk).update(
        next_pull_at=timezone.now() + wait, failures=failures
    )
    return wait


def _pull_later(connection: Connection, position: PullPosition, kind: str, message: str) -> None:
    wait = _wait(position, failed=True)
    next_try = timezone.now() + wait
    record_error(
        connection=connection,
        place=ErrorPlace.PULL,
        kind=kind,
        message=f"Pulling the other side's events failed: {message} Next try at "
        f"{next_try:%H:%M:%S}.",
        next_try_at=next_try,
    )


# How often the public side moves its feeds' windows past old events.
EXPIRE_EVERY = 3600.0
_last_expired: float | None = None


def pull_round(*, sent: bool) -> int:
    """The worker's pull step: pull from the peers that are due (from all of them at once
    after this side `sent` events: their answers may wait already); on the public side,
    move the feeds past old events now and then. Returns how many events were stored."""
    global _last_expired
    from sync.services.feed import expire_old_events

    if _last_expired is None or time.monotonic() - _last_expired > EXPIRE_EVERY:
        _last_expired = time.monotonic()
        expire_old_events()
    return pull_events(force=sent)
