"""Each wire format is one serializer: what this node writes, it reads back unchanged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from connections.serializers import ConnectionSideSerializer, StatusReportSerializer
from invitations import keys
from invitations.serializers import (
    AcceptAnswer,
    AcceptedConnection,
    Acceptor,
    AcceptRequestSerializer,
    AcceptResponseSerializer,
    Party,
)
from nodes.serializers import InstanceInfo, InstanceSerializer


def read_back(serializer_class, written):
    parsed = serializer_class(data=written)
    assert parsed.is_valid(), parsed.errors
    return parsed.validated_data


def test_the_discovery_answer_reads_back_as_written():
    info = InstanceInfo(
        uid=str(uuid.uuid4()),
        platform="xurrent",
        version="1.0.0",
        url="https://desk.example.com",
        short_name="desk",
        public=True,
        modes=("basic", "script"),
    )
    written = InstanceSerializer(info).data
    assert set(written) == {
        "uid",
        "platform",
        "version",
        "url",
        "short_name",
        "public",
        "modes",
        "api_version",
    }
    assert read_back(InstanceSerializer, written) == info


def test_discovery_ignores_modes_it_does_not_know_and_refuses_a_public_flag_in_words():
    written = InstanceSerializer(
        InstanceInfo(str(uuid.uuid4()), "jira", "9", "https://j.example", "j", True, ())
    ).data
    assert read_back(InstanceSerializer, {**written, "modes": ["script", "visual"]}).modes == (
        "script",
    )
    assert not InstanceSerializer(data={**written, "public": "yes"}).is_valid()


@pytest.mark.parametrize("url", ["https://desk-b.example.com", ""])
def test_the_accept_request_reads_back_as_written(url):
    acceptor = Acceptor(
        uid=str(uuid.uuid4()),
        connection_id=str(uuid.uuid4()),
        short_name="desk-b",
        platform="xurrent",
        url=url,
        version="1.0.0",
        public_key=keys.public_key_text(keys.new_private_key()),
    )
    written = AcceptRequestSerializer({"code": "abc.def", "acceptor": acceptor}).data
    assert written["acceptor"]["url"] == (url or None)  # a private node sends null
    assert read_back(AcceptRequestSerializer, written) == {"code": "abc.def", "acceptor": acceptor}


def test_an_acceptor_short_name_follows_the_short_name_rules():
    acceptor = Acceptor(
        str(uuid.uuid4()),
        "c1",
        "<b>desk</b>",
        "xurrent",
        public_key=keys.public_key_text(keys.new_private_key()),
    )
    written = AcceptRequestSerializer({"code": "abc.def", "acceptor": acceptor}).data
    parsed = AcceptRequestSerializer(data=written)
    assert not parsed.is_valid()
    assert "short_name" in parsed.errors["acceptor"]


def test_the_accept_answer_reads_back_as_written():
    answer = AcceptAnswer(
        connection=AcceptedConnection(
            id=str(uuid.uuid4()),
            name="Desk to Ops",
            description="",
            mode="script",
            status="active",
            source=Party(str(uuid.uuid4()), "https://a.example", "desk", "xurrent"),
            destination=Party(str(uuid.uuid4()), "", "ops", "xurrent"),
        ),
        public_key=keys.public_key_text(keys.new_private_key()),
    )
    written = AcceptResponseSerializer(answer).data
    assert written["connection"]["destination"]["url"] is None
    assert read_back(AcceptResponseSerializer, written) == answer


def test_a_status_report_reads_back_as_written():
    class Row:  # an outbox row carries these three
        status, reason = "deactivated", "maintenance"
        changed_at = datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC)

    written = StatusReportSerializer(Row()).data
    assert set(written) == {"status", "reason", "at"}
    assert read_back(StatusReportSerializer, written) == {
        "status": "deactivated",
        "reason": "maintenance",
        "changed_at": Row.changed_at,
    }


def test_a_connection_side_reads_back_as_written():
    side = {"id": "peer-42", "name": "Desk to Ops", "mode": "basic", "status": "deactivated"}
    assert read_back(ConnectionSideSerializer, ConnectionSideSerializer(side).data) == side
