"""Calling the peer of a connection: "Test connection", and its refusals in words."""

from __future__ import annotations

import time
from dataclasses import dataclass

from connections.auth import token_for
from connections.models import Connection, Status
from connections.serializers import ConnectionSideSerializer
from nodes import client


@dataclass(frozen=True)
class Rejection:
    kind: str  # "unknown_connection" | "rejected_token" | "unexpected"
    code: str
    message: str


def describe_rejection(status: int, answer) -> Rejection:
    """Put the peer's refusal in words: which of the known failures it is."""
    code = answer.get("code") if isinstance(answer, dict) else None
    code = code if isinstance(code, str) else ""
    detail = answer.get("detail") if isinstance(answer, dict) else None
    detail = f" It said: {detail[:200]}" if isinstance(detail, str) and detail else ""
    if code == "unknown_connection" or status == 404:
        return Rejection(
            "unknown_connection",
            code or "not_found",
            "The remote node does not know this connection (it may have been deleted there).",
        )
    if status in (401, 403):
        return Rejection(
            "rejected_token",
            code,
            f"The remote node rejected this node's token ({code or f'HTTP {status}'}).{detail}",
        )
    return Rejection(
        "unexpected", code, f"The remote node answered HTTP {status} ({code or 'no code'}).{detail}"
    )


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of "Test connection"."""

    ok: bool
    message: str
    failure: str = ""  # unreachable | timeout | rejected_token | unknown_connection | …
    round_trip_ms: int | None = None
    peer_status: str = ""


def test_connection(connection: Connection) -> ConnectionCheck:
    """Make an authenticated call to the peer and say how it went."""
    if not connection.is_paired:
        return ConnectionCheck(
            False,
            "This connection has no remote side yet: the invitation has not been accepted.",
            failure="not_paired",
        )
    started = time.perf_counter()
    if connection.is_local:
        peer = connection.local_peer()
        elapsed = round((time.perf_counter() - started) * 1000)
        if peer is None:
            return ConnectionCheck(
                False,
                "The other side of this local connection no longer exists.",
                failure="unknown_connection",
            )
        return _answered(peer.status, elapsed)
    if not connection.remote_url:
        return ConnectionCheck(
            False,
            "The remote instance is in a private network: this node cannot call it.",
            failure="private_network",
        )
    path = f"/api/v1/connections/{connection.remote_connection_id}/"
    try:
        status, answer = client.request(
            "GET",
            connection.remote_url,
            path,
            headers={"Authorization": f"Bearer {token_for(connection)}"},
        )
    except client.NodeError as exc:
        kind = {"timeout": "timeout", "unreachable": "unreachable", "blocked": "unreachable"}
        failure = kind.get(exc.kind, exc.kind)
        what = "timed out" if failure == "timeout" else "unreachable"
        return ConnectionCheck(False, f"Remote node {what}: {exc.message}", failure=failure)
    elapsed = round((time.perf_counter() - started) * 1000)
    side = ConnectionSideSerializer(data=answer)
    if status == 200 and side.is_valid():
        return _answered(side.validated_data["status"], elapsed)
    rejection = describe_rejection(status, answer)
    return ConnectionCheck(False, rejection.message, failure=rejection.kind, round_trip_ms=elapsed)


# Not a pytest test, whatever its name says.
test_connection.__test__ = False  # type: ignore[attr-defined]


def _answered(peer_status: str, elapsed_ms: int) -> ConnectionCheck:
    label = dict(Status.choices).get(peer_status, peer_status)
    return ConnectionCheck(
        True,
        f"The remote side answered in {elapsed_ms} ms; its side is {label.lower()}.",
        round_trip_ms=elapsed_ms,
        peer_status=peer_status,
    )
