"""`GET /api/v1/instance/`: discovery, who this node is (no auth)."""

from rest_framework.response import Response
from rest_framework.views import APIView

from exalate_site.openapi import extend_schema
from nodes.models import GeneralSettings
from nodes.serializers import InstanceInfo, InstanceSerializer


class InstanceView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        summary="Discover this node",
        description="Who this node is and which configuration modes it can take part in now.",
        responses=InstanceSerializer,
    )
    def get(self, request):
        node = GeneralSettings.load()
        return Response(InstanceSerializer(InstanceInfo.of(node)).data)
