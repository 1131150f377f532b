"""`POST /api/v1/invitations/accept/`: another node accepts an invitation this node issued."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from exalate_site.api_errors import APIError
from exalate_site.client_address import client_address
from exalate_site.openapi import extend_schema
from invitations.serializers import (
    AcceptRequestSerializer,
    AcceptResponseSerializer,
    error_serializer,
)
from invitations.services import redeeming
from nodes.models import GeneralSettings


class AcceptThrottle(ScopedRateThrottle):
    """Per client address (nobody is logged in here), on the configured cache.

    Reads the rate when a request comes, not at import, so a changed setting applies.
    """

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        # The same address the login lockout counts, with the trusted-proxy rule.
        return client_address(request)


def _error(status: int, codes: dict[str, str], *, with_errors: bool = False):
    return OpenApiResponse(
        error_serializer(f"AcceptError{status}", list(codes), with_errors=with_errors),
        description="; ".join(f"`{code}`: {when}" for code, when in codes.items()),
        examples=[
            OpenApiExample(
                f"{status} {code}",
                value={"code": code, "detail": when},
                status_codes=[str(status)],
                response_only=True,
            )
            for code, when in codes.items()
        ],
    )


class AcceptInvitationView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [AcceptThrottle]
    throttle_scope = "accept"

    @extend_schema(
        summary="Accept an invitation",
        description=(
            "Called by the destination node when its admin accepts an invitation code made "
            "here. The code is the credential. The acceptor sends its X25519 public key, "
            "this node answers with its own, and each side derives the shared secret "
            "(HKDF-SHA256 over the X25519 result; salt: SHA-256 of the invitation token; "
            "info: `exalate-connection` followed by the source's and the destination's "
            "connection ids): no secret crosses the wire. This node's side is then paired "
            "but stays `pending` until the acceptor's first signed call "
            "(`POST /api/v1/connections/<id>/status/` with `active`) confirms that it "
            "stored its side. Idempotent for the same acceptor only (same `uid`, "
            "`connection_id` and `public_key`) while the code is valid; after expiry a "
            "repeat gets 410. Of concurrent accepts of one code, exactly one wins. "
            "Throttled per client address."
        ),
        request=AcceptRequestSerializer,
        responses={
            200: AcceptResponseSerializer,
            400: _error(
                400,
                {
                    "invalid_code": "The code is damaged or incomplete.",
                    "invalid_request": "The body is not valid JSON or a field is wrong.",
                },
                with_errors=True,
            ),
            403: _error(
                403,
                {"wrong_destination": "The code was made for another destination node."},
            ),
            404: _error(
                404,
                {"invitation_not_found": "No invitation on this node matches the code."},
            ),
            409: _error(
                409,
                {
                    "invitation_used": "Another acceptor (another uid, connection id or "
                    "public key) already accepted the code.",
                    "mode_unavailable": "This node's licence no longer allows the mode.",
                },
            ),
            410: _error(
                410,
                {
                    "invitation_expired": "The code has expired.",
                    "invitation_revoked": "The code was revoked or regenerated.",
                },
            ),
            415: _error(
                415,
                {"unsupported_media_type": "The body is not sent as application/json."},
            ),
            429: _error(429, {"throttled": "Too many attempts: wait and retry."}),
        },
        tags=["invitations"],
    )
    def post(self, request):
        serializer = AcceptRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        node = GeneralSettings.load()
        try:
            redemption = redeeming.redeem_invitation(
                serializer.validated_data["code"], serializer.validated_data["acceptor"], node
            )
        except redeeming.RedeemError as error:
            raise APIError(error.status, error.code, error.detail) from None
        return Response(AcceptResponseSerializer(redemption.answer(node)).data)
