"""Wire formats between the two sides of a connection. Each serializer both writes the body
this node sends and reads the one the peer sent."""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from connections.models import RemoteStatus, Status
from nodes.models import Mode


class ConnectionSideSerializer(serializers.Serializer):
    """One side of a connection as its peer may see it (never the secret)."""

    id = serializers.CharField(max_length=64, help_text="This side's id of the connection.")
    name = serializers.CharField(max_length=100)
    mode = serializers.ChoiceField(choices=Mode.choices)
    status = serializers.ChoiceField(choices=Status.choices)


class StatusReportSerializer(serializers.Serializer):
    """`POST …/status/`: what the sender did with its side. Written from an outbox row."""

    status = serializers.ChoiceField(choices=RemoteStatus.choices)
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    at = serializers.DateTimeField(
        source="changed_at",
        required=False,
        help_text="When the sender changed its side; a report older than one already "
        "received is ignored (notifications may arrive out of order).",
    )


ERROR_BODY = inline_serializer(
    "Error", {"code": serializers.CharField(), "detail": serializers.CharField()}
)
