"""`GET /api/v1/instance/`: discovery, who this node is (no auth)."""

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from nodes.models import GeneralSettings


def instance_info() -> dict:
    node = GeneralSettings.load()
    return {
        "uid": str(node.uid),
        "platform": node.platform,
        "version": settings.EXALATE_VERSION,
        "url": node.base_url,
        "short_name": node.short_name,
        "public": node.public,
        "modes": node.available_modes(),
        "api_version": 1,
    }


class InstanceView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        summary="Discover this node",
        description="Who this node is and which configuration modes it can take part in now.",
        responses=inline_serializer(
            "Instance",
            {
                "uid": serializers.UUIDField(),
                "platform": serializers.CharField(),
                "version": serializers.CharField(),
                "url": serializers.URLField(),
                "short_name": serializers.CharField(),
                "public": serializers.BooleanField(),
                "modes": serializers.ListField(
                    child=serializers.ChoiceField(choices=["basic", "script"])
                ),
                "api_version": serializers.IntegerField(),
            },
        ),
    )
    def get(self, request):
        return Response(instance_info())
