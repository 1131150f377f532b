"""The sync endpoints the other side of a connection calls (node token, DESIGN.md §11)."""

from collections.abc import Callable
from typing import Any

from rest_framework import status
from rest_framework.response import Response

from connections.api import MALFORMED_ID, PeerAPIView
from connections.serializers import ERROR_BODY
from exalate_site.api_errors import APIError
from exalate_site.openapi import extend_schema
from sync.serializers import (
    PullAnswerSerializer,
    PullQuerySerializer,
    SyncAnswerSerializer,
    SyncEventSerializer,
)
from sync.services.feed import answer_pull
from sync.services.receive import (
    Refused,
    is_batch,
    receive_event,
    receive_events,
    receive_result,
    receive_results,
)

# receive_event and its kin: (the calling connection, the body) -> the answer.
Receiver = Callable[[Any, Any], dict]

# What the events endpoint (pull and push) may refuse with, for its OpenAPI description.
_EVENT_REFUSALS = {
    400: ERROR_BODY,
    401: ERROR_BODY,
    403: ERROR_BODY,
    404: MALFORMED_ID,
    409: ERROR_BODY,
    410: ERROR_BODY,
}


def _refusal(exc: Refused) -> Response:
    return Response(exc.body(), status=exc.status)


def _receive(request, key: str, one: Receiver, batch: Receiver) -> dict:
    """A batch body (its items under `key`) goes to `batch`, any other to `one`."""
    if is_batch(request.data, key):
        return batch(request.auth, request.data)
    return one(request.auth, request.data)


class SyncEventView(PeerAPIView):
    @extend_schema(
        summary="Pull the events waiting for a side that cannot be called",
        description="A side in a private network (it gave no URL) asks for the events "
        "waiting for it, in order, after the last cursor it stored; asking after N says "
        "every event up to N is stored there. Their results come back by "
        "`POST …/sync/ack/`. Ask again after `cursor`; `more` says a next page waits. 410 "
        "`cursor_expired`: the events after that cursor are no longer kept (7 days): start "
        "again after the `cursor` of the error body, where a fresh state of every synced "
        "request follows. 409 `connection_inactive`: ask again later. Any answer may "
        "carry `side`: this side's newest status report (as `POST …/status/` has it), "
        "which is how a side that cannot be called hears of it.",
        parameters=[PullQuerySerializer],
        responses={200: PullAnswerSerializer, **_EVENT_REFUSALS},
    )
    def get(self, request, pk):
        status_code, body = answer_pull(request.auth, request.query_params.get("after"))
        return Response(body, status=status_code)

    @extend_schema(
        summary="Store one sync event of the other side",
        description="Stored once per event uuid and answered 202 at once (a repeat gets the "
        "same answer); it is applied afterwards and the result follows by "
        "`POST …/sync/ack/`. 409 `event_conflict`: the uuid came before with another "
        "body. 409 `connection_inactive`: keep the event and send it again later. 410 "
        "`twin_unexalated`: the request was unexalated here. 400 `unsupported_protocol`. "
        'A batch, `{"protocol": 1, "events": [event, …]}` (at most 100), stores each '
        'event as if sent alone, in order, and answers 202 `{"results": [...]}`: per '
        "event its answer or its refusal, each with its `status`.",
        request=SyncEventSerializer,
        responses={202: SyncAnswerSerializer, **_EVENT_REFUSALS},
    )
    def post(self, request, pk):
        try:
            answer = _receive(request, "events", receive_event, receive_events)
        except Refused as exc:
            return _refusal(exc)
        return Response(answer, status=status.HTTP_202_ACCEPTED)


class SyncAckView(PeerAPIView):
    @extend_schema(
        summary="The result of one of this side's sync events",
        description="The other side applied (or superseded, or failed to apply) an event this "
        "side sent, and says so with its request id or its error. A batch, "
        '`{"protocol": 1, "results": [result, …]}` (at most 100), answers '
        '`{"results": [...]}`: per result `{"status": 200, "event", "state"}` '
        "or its refusal (e.g. 404 `event_not_found`).",
        request=SyncAnswerSerializer,
        responses={200: SyncAnswerSerializer, 400: ERROR_BODY, 401: ERROR_BODY, 404: ERROR_BODY},
    )
    def post(self, request, pk):
        try:
            answer = _receive(request, "results", receive_result, receive_results)
        except Refused as exc:
            if exc.status == 404:
                raise APIError(404, exc.code, exc.detail) from None
            return _refusal(exc)
        return Response(answer)
