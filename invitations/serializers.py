"""The accept endpoint's request and answer (DESIGN.md §5), and its error bodies for the docs."""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from invitations import code as invitation_code
from nodes.models import Mode
from nodes.validators import InvalidURL, normalize_url


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


class TextUUIDField(serializers.UUIDField):
    """A UUID written as text: DRF would also take a bare integer, the contract does not."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class AcceptorSerializer(serializers.Serializer):
    uid = TextUUIDField(help_text="The accepting node's uid.")
    url = NodeURLField(
        allow_null=True,
        default=None,
        help_text="The accepting node's base URL, or null for a node in a private network.",
    )
    short_name = serializers.CharField(max_length=40, help_text="The acceptor's short name.")
    platform = serializers.CharField(max_length=20, help_text='For example "xurrent".')
    version = serializers.CharField(max_length=20, allow_blank=True, default="")
    connection_id = serializers.RegexField(
        r"^[A-Za-z0-9._:-]+$",
        max_length=64,
        help_text="The acceptor's id for its side of the connection.",
    )


class AcceptRequestSerializer(serializers.Serializer):
    # Room for line breaks a mail client may add to the (at most 4096 character) code.
    code = serializers.CharField(
        max_length=2 * invitation_code.MAX_LENGTH, help_text="The invitation code, as pasted."
    )
    acceptor = AcceptorSerializer()


class PartySerializer(serializers.Serializer):
    uid = TextUUIDField()
    url = NodeURLField(allow_null=True)
    short_name = serializers.CharField(max_length=40)
    platform = serializers.CharField(max_length=20)


class AcceptedConnectionSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=64, help_text="The source's id of the connection.")
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=1000, allow_blank=True)
    mode = serializers.ChoiceField(choices=Mode.choices)
    status = serializers.ChoiceField(choices=["active"])
    source = PartySerializer()
    destination = PartySerializer()


class AcceptResponseSerializer(serializers.Serializer):
    """The 200 answer; the acceptor also reads the issuer's answer with it."""

    connection = AcceptedConnectionSerializer()
    secret = serializers.CharField(
        min_length=43,
        max_length=64,
        help_text="The shared secret (base64url of 32 random bytes) both sides sign calls with.",
    )


def error_serializer(name: str, codes: list[str], *, with_errors: bool = False):
    """The `{"code", "detail"}` error body, with the codes a given status can carry."""
    fields = {
        "code": serializers.ChoiceField(choices=codes),
        "detail": serializers.CharField(help_text="A sentence for a person."),
    }
    if with_errors:
        fields["errors"] = serializers.DictField(
            required=False, help_text="Field name → what is wrong with it."
        )
    return inline_serializer(name, fields)
