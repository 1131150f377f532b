"""The plain-shape check of event and result bodies gives what the serializers give."""

import uuid

import pytest

from sync.serializers import SyncAnswerSerializer, SyncEventSerializer
from sync.services.receive import plain_event, plain_result

EVENT = {
    "protocol": 1,
    "event": str(uuid.uuid4()),
    "twin": "42",
    "twin_id": str(uuid.uuid4()),
    "seq": 3,
    "replica": {"summary": "Printer on fire", "comments": []},
}


def serialized(serializer, body):
    data = serializer(data=body)
    return dict(data.validated_data) if data.is_valid() else None


@pytest.mark.parametrize(
    "body",
    [
        EVENT,
        {**EVENT, "previous": {"summary": "Printer"}, "action": "update"},
        {**EVENT, "action": "unexalate", "replica": None},
        {**EVENT, "twin": ""},
        {**EVENT, "event": EVENT["event"].replace("-", "").upper()},
    ],
)
def test_a_plain_event_is_taken_as_the_serializer_takes_it(body):
    assert plain_event(body) is not None
    assert plain_event(body) == serialized(SyncEventSerializer, body)


@pytest.mark.parametrize(
    "changes",
    [
        {"twin": 42},
        {"twin": " 42 "},
        {"twin": "4\x002"},
        {"twin": "x" * 65},
        {"seq": "3"},
        {"seq": 0},
        {"seq": True},
        {"protocol": True},
        {"event": "not a uuid"},
        {"twin_id": 7},
        {"action": "delete"},
        {"replica": ["not", "an", "object"]},
    ],
)
def test_any_other_event_is_left_to_the_serializer(changes):
    body = {**EVENT, **changes}
    assert plain_event(body) is None


RESULT = {"protocol": 1, "event": str(uuid.uuid4()), "state": "applied", "request_id": "1001"}


@pytest.mark.parametrize(
    "body",
    [
        RESULT,
        {"event": RESULT["event"], "state": "queued"},
        {**RESULT, "state": "failed", "error": "The script failed.", "line": 3},
        {**RESULT, "line": None, "request_id": ""},
    ],
)
def test_a_plain_result_is_taken_as_the_serializer_takes_it(body):
    assert plain_result(body) is not None
    assert plain_result(body) == serialized(SyncAnswerSerializer, body)


@pytest.mark.parametrize(
    "changes",
    [
        {"request_id": 1001},
        {"request_id": "1001 "},
        {"error": None},
        {"line": "3"},
        {"state": "done"},
        {"event": None},
        {"protocol": "1"},
    ],
)
def test_any_other_result_is_left_to_the_serializer(changes):
    assert plain_result({**RESULT, **changes}) is None
