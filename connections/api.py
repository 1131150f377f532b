"""The API the peer of a connection calls once it is active (signed node tokens)."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework.response import Response
from rest_framework.views import APIView

from connections.auth import IsPeerOfThisConnection, NodeTokenAuthentication
from connections.serializers import ERROR_BODY, ConnectionSideSerializer, StatusReportSerializer
from connections.services.actions import record_remote_status
from exalate_site.openapi import extend_schema

# The id in the address must be a UUID; any other text matches no route.
MALFORMED_ID = OpenApiResponse(
    ERROR_BODY, description="`not_found`: the connection id in the address is not a UUID."
)


class PeerAPIView(APIView):
    """Endpoints only the peer of a connection may call, with its signed token."""

    authentication_classes = [NodeTokenAuthentication]
    permission_classes = [IsPeerOfThisConnection]


class ConnectionSideView(PeerAPIView):
    @extend_schema(
        summary="Read this side of a connection",
        description="The peer's check that the connection works ('Test connection'). "
        "Needs a token signed with the connection's shared secret.",
        responses={
            200: ConnectionSideSerializer,
            401: ERROR_BODY,
            403: ERROR_BODY,
            404: MALFORMED_ID,
        },
    )
    def get(self, request, pk):
        return Response(ConnectionSideSerializer(request.auth).data)


class ConnectionStatusView(PeerAPIView):
    @extend_schema(
        summary="Tell this side what the peer did with its side",
        description="The peer reports that its side is now active, deactivated or deleted. "
        "'deleted' puts this side in error. Needs a token signed with the shared secret.",
        request=StatusReportSerializer,
        responses={
            200: ConnectionSideSerializer,
            400: ERROR_BODY,
            401: ERROR_BODY,
            403: ERROR_BODY,
            404: MALFORMED_ID,
        },
    )
    def post(self, request, pk):
        report = StatusReportSerializer(data=request.data)
        report.is_valid(raise_exception=True)
        connection = request.auth
        record_remote_status(
            connection,
            report.validated_data["status"],
            reason=report.validated_data["reason"],
            changed_at=report.validated_data.get("changed_at"),
        )
        return Response(ConnectionSideSerializer(connection).data)
