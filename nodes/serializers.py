"""Wire formats about nodes: the fields every node-to-node body shares, and discovery.

Each format is one serializer that both builds the body this node sends and reads the
body another node sent, so the two can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from rest_framework import serializers

from nodes.models import GeneralSettings, Mode
from nodes.validators import SHORT_NAME_MAX_LENGTH, InvalidURL, normalize_url


class NodeURLField(serializers.CharField):
    """A node's base URL. Stricter than a plain string, looser than URLField: intranet host
    names without a dot ("http://exalate-b:8000") are valid node addresses."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 500)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return normalize_url(value)
        except InvalidURL as error:
            raise serializers.ValidationError(str(error)) from None

    def to_representation(self, value):
        # A node without a URL (private network) is written as null, never "".
        return value or None


class TextUUIDField(serializers.UUIDField):
    """A UUID written as text: DRF would also take a bare integer, the contract does not."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return str(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    """true or false, nothing that merely looks like one ("yes", 1)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class ModesField(serializers.ListField):
    """The configuration modes a node offers; modes this node does not know are ignored
    (a newer node may offer more)."""

    child = serializers.CharField()

    def to_internal_value(self, data):
        offered = super().to_internal_value(data)
        return tuple(mode for mode in Mode.values if mode in offered)


@dataclass(frozen=True)
class InstanceInfo:
    """A node as its discovery endpoint, `GET /api/v1/instance/`, describes it."""

    uid: str
    platform: str
    version: str
    url: str
    short_name: str
    public: bool
    modes: tuple[str, ...]
    api_version: int = 1

    @classmethod
    def of(cls, node: GeneralSettings) -> InstanceInfo:
        return cls(
            uid=str(node.uid),
            platform=node.platform,
            version=settings.EXALATE_VERSION,
            url=node.base_url,
            short_name=node.short_name,
            public=node.public,
            modes=tuple(node.available_modes()),
        )


class InstanceSerializer(serializers.Serializer):
    uid = TextUUIDField(help_text="The node's stable uid.")
    platform = serializers.CharField(max_length=20, help_text='For example "xurrent".')
    version = serializers.CharField(max_length=20)
    url = serializers.CharField(
        max_length=500, required=False, default="", help_text="The node's Exalate URL."
    )
    short_name = serializers.CharField(
        max_length=SHORT_NAME_MAX_LENGTH, allow_blank=True, required=False, default=""
    )
    public = StrictBooleanField(help_text="Only a public node can initiate connections.")
    modes = ModesField(help_text="The configuration modes it can take part in now.")
    api_version = serializers.IntegerField(min_value=1)

    def validate(self, attrs) -> InstanceInfo:
        return InstanceInfo(**attrs)
