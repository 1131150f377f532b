"""The shape of a webhook call from Xurrent (the part of it this node keeps)."""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

EVENT_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)+$"
# A database's bigint holds it; Xurrent's ids are far smaller.
MAX_OBJECT_ID = 2**63 - 1


class WebhookSerializer(serializers.Serializer):
    """What is kept of a webhook: the event and the object it is about, for the account.

    The rest of the body (payload, person) is not trusted and not kept: the sync engine
    reads the object back through the API. Only a digest of the payload is kept, by which
    the engine recognises the webhook of its own write (and then need not read it back).
    """

    event = serializers.RegexField(
        EVENT_PATTERN, max_length=100, help_text="Such as request.update or request.note-added."
    )
    object_id = serializers.IntegerField(
        min_value=1, max_value=MAX_OBJECT_ID, required=False, allow_null=True
    )
    account = serializers.CharField(max_length=100)
    webhook_id = serializers.IntegerField(required=False, allow_null=True)
    person_id = serializers.IntegerField(required=False, allow_null=True)
    person_name = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    payload = serializers.JSONField(required=False)


class SignedWebhookSerializer(serializers.Serializer):
    jwt = serializers.CharField(
        max_length=64 * 1024,
        help_text="The webhook, signed RS256 with the webhook policy's key; its `data` "
        "claim holds the fields of an unsigned call.",
    )


RECEIVED = inline_serializer("WebhookReceived", {"status": serializers.CharField()})
