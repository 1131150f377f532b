"""`POST /api/v1/xurrent/webhook/`: Xurrent tells this node that something changed.

The call only leaves a hint (which object, which event) and is answered at once: Xurrent
wants an answer within 10 s, and the sync engine reads the object back through the API
anyway, so nothing in the body is trusted. No login and no CSRF token: it is an API for
Xurrent, checked by the webhook policy's signature when a key is set.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from exalate_site.api_errors import APIError
from exalate_site.client_address import client_address
from exalate_site.openapi import extend_schema
from nodes.models import GeneralSettings
from xurrent.serializers import RECEIVED, SignedWebhookSerializer, WebhookSerializer
from xurrent.services import WebhookRefused, record_webhook, webhook_data

WEBHOOK_ERROR = inline_serializer(
    "WebhookError", {"code": serializers.CharField(), "detail": serializers.CharField()}
)


class WebhookThrottle(ScopedRateThrottle):
    """Per sending address, on the configured cache; the rate is read when a call comes."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        return client_address(request)


class WebhookView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [WebhookThrottle]
    throttle_scope = "xurrent_webhook"

    @extend_schema(
        summary="Receive a webhook from Xurrent",
        description=(
            "Xurrent calls this for each event of the account (request.create, "
            "request.update, request.note-added, …). The node keeps only the event and the "
            "object id as a hint and reads the object back through Xurrent's API later. "
            "When a webhook policy key is set in the General Settings, the call must be "
            'signed: `{"jwt": "…"}` (RS256, the fields in its `data` claim); otherwise '
            "the plain body is taken. The account must be the one this node serves."
        ),
        request=PolymorphicProxySerializer(
            component_name="XurrentWebhook",
            serializers=[WebhookSerializer, SignedWebhookSerializer],
            resource_type_field_name=None,
        ),
        responses={
            202: RECEIVED,
            400: OpenApiResponse(WEBHOOK_ERROR, description="`invalid_request`: not a webhook."),
            401: OpenApiResponse(
                WEBHOOK_ERROR,
                description="`signature_required`, `invalid_signature`, `signature_expired`, "
                "`signature_not_yet_valid`: a policy key is set and the call is not signed "
                "with it.",
            ),
            403: OpenApiResponse(
                WEBHOOK_ERROR,
                description="`wrong_account`: for another account; `no_account`: this node "
                "has no Xurrent account set up.",
            ),
            429: OpenApiResponse(WEBHOOK_ERROR, description="`throttled`: too many calls."),
        },
    )
    def post(self, request):
        served, policy_key = GeneralSettings.webhook_policy()
        try:
            data = webhook_data(request.data, policy_key)
            webhook = WebhookSerializer(data=data)
            webhook.is_valid(raise_exception=True)
            record_webhook(
                served,
                event=webhook.validated_data["event"],
                object_id=webhook.validated_data.get("object_id"),
                account=webhook.validated_data["account"],
                payload=webhook.validated_data.get("payload"),
            )
        except WebhookRefused as refused:
            raise APIError(refused.status, refused.code, refused.detail) from None
        return Response({"status": "received"}, status=202)
