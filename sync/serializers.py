"""Wire formats of the sync protocol between two nodes (protocol 1)."""

from __future__ import annotations

from rest_framework import serializers

from connections.serializers import StatusReportSerializer
from sync.models import EventAction

PROTOCOL = 1
# Events (or results) one batch call may carry: `{"protocol": 1, "events": [...]}` to
# `…/sync/`, `{"protocol": 1, "results": [...]}` to `…/sync/ack/`.
BATCH_MAX = 100


class SyncEventSerializer(serializers.Serializer):
    """`POST …/sync/`: one event of the sender's queue."""

    protocol = serializers.IntegerField(help_text="Always 1.")
    event = serializers.UUIDField(help_text="The event's uuid: a repeat gets the same answer.")
    twin = serializers.CharField(
        max_length=64, allow_blank=True, help_text="The sender's local request id."
    )
    twin_id = serializers.UUIDField(help_text="The twin's id, minted where it started.")
    seq = serializers.IntegerField(min_value=1, help_text="Rises per twin; gaps allowed.")
    action = serializers.ChoiceField(
        choices=EventAction.choices, required=False, default=EventAction.UPDATE
    )
    replica = serializers.JSONField(required=False, allow_null=True, default=None)
    previous = serializers.JSONField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The sender's replica before this one: the receiver applies only what "
        "changed since (when it has received nothing of this twin yet).",
    )

    def validate(self, attrs):
        replica = attrs.get("replica")
        if attrs["action"] == EventAction.UPDATE and not isinstance(replica, dict):
            raise serializers.ValidationError({"replica": ["An update carries a replica object."]})
        return attrs


class SyncAnswerSerializer(serializers.Serializer):
    """The answer to `POST …/sync/` (202), and the body of `POST …/sync/ack/`."""

    protocol = serializers.IntegerField(required=False, default=PROTOCOL)
    event = serializers.UUIDField()
    state = serializers.ChoiceField(choices=["queued", "applied", "superseded", "failed"])
    request_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    error = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    line = serializers.IntegerField(required=False, allow_null=True)


class PullQuerySerializer(serializers.Serializer):
    """`GET …/sync/`'s query: where the pulling side is in the feed."""

    after = serializers.IntegerField(
        min_value=0,
        required=False,
        default=0,
        help_text="The last cursor this side stored (0: from the start).",
    )


class PulledEventSerializer(SyncEventSerializer):
    """One event of a pull: the body `POST …/sync/` would carry, and its place."""

    cursor = serializers.IntegerField(min_value=1, help_text="The event's place in the feed.")


class PullAnswerSerializer(serializers.Serializer):
    """The answer to `GET …/sync/?after=N`."""

    protocol = serializers.IntegerField(help_text="Always 1.")
    events = PulledEventSerializer(many=True, help_text="In the order they must be stored.")
    cursor = serializers.IntegerField(help_text="Ask after this cursor next time.")
    more = serializers.BooleanField(help_text="More events wait: ask again at once.")
    side = StatusReportSerializer(
        required=False,
        help_text="This side's newest status report (deactivated, active, ...), also on a "
        "409: how a side that cannot be called hears of it.",
    )
