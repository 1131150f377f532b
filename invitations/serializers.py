"""The accept endpoint's request and answer (DESIGN.md §5), and its error bodies for the docs."""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from connections.models import Peer
from invitations import code as invitation_code
from invitations import keys
from nodes.models import Mode
from nodes.serializers import NodeURLField, TextUUIDField
from nodes.validators import SHORT_NAME_MAX_LENGTH, validate_short_name


@dataclass(frozen=True)
class Acceptor(Peer):
    """The node that accepts an invitation, as it describes itself in the accept call."""

    version: str = ""
    public_key: str = ""  # its X25519 public key for this connection (base64url)


@dataclass(frozen=True)
class Party:
    """One side of an accepted connection, in the issuer's answer."""

    uid: str
    url: str
    short_name: str
    platform: str


@dataclass(frozen=True)
class AcceptedConnection:
    id: str
    name: str
    description: str
    mode: str
    status: str
    source: Party
    destination: Party


@dataclass(frozen=True)
class AcceptAnswer:
    """The issuer's answer: public values only, so a repeat of the call reveals nothing."""

    connection: AcceptedConnection
    public_key: str  # the issuer's X25519 public key for this connection


class PublicKeyField(serializers.CharField):
    """An X25519 public key: 32 bytes as base64url."""

    def __init__(self, **kwargs):
        kwargs.update(min_length=43, max_length=44)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            keys.read_public_key(value)
        except keys.InvalidPublicKey as error:
            raise serializers.ValidationError(str(error)) from None
        return value.rstrip("=")


class AcceptorSerializer(serializers.Serializer):
    uid = TextUUIDField(help_text="The accepting node's uid.")
    url = NodeURLField(
        allow_null=True,
        default=None,
        help_text="The accepting node's base URL, or null for a node in a private network.",
    )
    short_name = serializers.CharField(
        max_length=SHORT_NAME_MAX_LENGTH,
        validators=[validate_short_name],
        help_text="The acceptor's short name.",
    )
    platform = serializers.CharField(max_length=20, help_text='For example "xurrent".')
    version = serializers.CharField(max_length=20, allow_blank=True, default="")
    connection_id = serializers.RegexField(
        r"^[A-Za-z0-9._:-]+$",
        max_length=64,
        help_text="The acceptor's id for its side of the connection.",
    )
    public_key = PublicKeyField(
        help_text="The acceptor's X25519 public key for this connection (base64url, 32 bytes)."
    )

    def validate(self, attrs) -> Acceptor:
        return Acceptor(**{**attrs, "url": attrs["url"] or ""})


class AcceptRequestSerializer(serializers.Serializer):
    """The accept call's body: `{"code", "acceptor"}`. Built with a dict of the two."""

    # Room for line breaks a mail client may add to the (at most 4096 character) code.
    code = serializers.CharField(
        max_length=2 * invitation_code.MAX_LENGTH, help_text="The invitation code, as pasted."
    )
    acceptor = AcceptorSerializer()


class PartySerializer(serializers.Serializer):
    uid = TextUUIDField()
    url = NodeURLField(allow_null=True)
    short_name = serializers.CharField(max_length=SHORT_NAME_MAX_LENGTH)
    platform = serializers.CharField(max_length=20)

    def validate(self, attrs) -> Party:
        return Party(**{**attrs, "url": attrs["url"] or ""})


class AcceptedConnectionSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=64, help_text="The source's id of the connection.")
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=1000, allow_blank=True)
    mode = serializers.ChoiceField(choices=Mode.choices)
    status = serializers.ChoiceField(
        choices=["pending", "active"],
        help_text="pending until the acceptor confirms with its first signed call.",
    )
    source = PartySerializer()
    destination = PartySerializer()

    def validate(self, attrs) -> AcceptedConnection:
        return AcceptedConnection(**attrs)


class AcceptResponseSerializer(serializers.Serializer):
    """The issuer's 200 answer: it writes it from an AcceptAnswer, the acceptor reads it
    back into one."""

    connection = AcceptedConnectionSerializer()
    public_key = PublicKeyField(
        help_text="The issuer's X25519 public key for this connection: with its own key "
        "pair the acceptor derives the shared secret (no secret is sent)."
    )

    def validate(self, attrs) -> AcceptAnswer:
        return AcceptAnswer(**attrs)


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
