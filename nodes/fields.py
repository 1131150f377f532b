"""Model fields that carry the product's field rules, so every form, serializer built from
a model and the admin apply them without repeating them."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from nodes import encryption
from nodes.validators import SHORT_NAME_MAX_LENGTH, InvalidURL, normalize_url, validate_short_name


def validate_node_url(value: str) -> None:
    try:
        normalize_url(value)
    except InvalidURL as error:
        raise ValidationError(str(error), code="invalid_node_url") from None


class NodeURLFormField(forms.CharField):
    """Takes what an admin typed and keeps the node's base URL in its normal form."""

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return value
        try:
            return normalize_url(value)
        except InvalidURL as error:
            raise ValidationError(str(error), code="invalid_node_url") from None


class NodeURLField(models.CharField):
    """A node's base URL: http(s), a host, maybe a port and a path, nothing else. Looser
    than URLField on purpose: an intranet host without a dot is a valid node address."""

    default_validators = [validate_node_url]

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 500)
        super().__init__(*args, **kwargs)

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": NodeURLFormField, **kwargs})


class ShortNameField(models.CharField):
    """An instance's short name, as both sides of a connection show it."""

    default_validators = [validate_short_name]

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", SHORT_NAME_MAX_LENGTH)
        super().__init__(*args, **kwargs)


# How a serialized secret (dumpdata) is marked as its Fernet token, not the secret itself.
SEALED_MARK = "fernet-token:"


class SealedSecret:
    """A secret as its row holds it, not decrypted yet: its Fernet token. A model instance
    keeps it so until the secret is first read (EncryptedTextField), and writes it back as
    it is if it never was. Not a str, so that a token is never used as the secret."""

    __slots__ = ("token",)

    def __init__(self, token: str):
        self.token = token

    def __repr__(self) -> str:
        return "<SealedSecret>"

    def open(self) -> str:
        """The secret, or an UnreadableSecret (which reads as "") when no key opens it."""
        return encryption.decrypt(self.token)


class SecretAttribute(DeferredAttribute):
    """The model attribute of an EncryptedTextField: decrypts the secret the first time it
    is read on an instance (a row read for a list page or a status check never is), then
    keeps the secret. A data descriptor, so that every read goes through it."""

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        value = super().__get__(instance, cls)  # loads a deferred field, as usual
        if isinstance(value, SealedSecret):
            value = instance.__dict__[self.field.attname] = value.open()
        return value

    def __set__(self, instance, value) -> None:
        instance.__dict__[self.field.attname] = value


def holds_secret(instance: models.Model, field_name: str) -> bool:
    """Whether `instance` has a secret it can use in its EncryptedTextField `field_name`,
    told without decrypting it: one that no configured key opens counts as none, as it
    reads as "" once decrypted."""
    value = instance.__dict__.get(field_name)
    if isinstance(value, SealedSecret):
        return encryption.is_readable(value.token)
    return bool(getattr(instance, field_name))


class EncryptedTextField(models.TextField):
    """A secret kept encrypted at rest (nodes/encryption.py): the model attribute holds the
    secret, the column only its Fernet token. An empty value stays empty, so "no secret"
    can still be told and wiped with a plain update. Never shown in forms or the admin.

    A secret is decrypted when it is first read on an instance (SecretAttribute), not
    when its row is: ask `holds_secret` whether there is one. `values()` and
    `values_list()` give a SealedSecret for a non-empty value (its `open()` decrypts).

    Lookups compare tokens, and a token is different every time: filter on emptiness only.
    """

    descriptor_class = SecretAttribute

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return SealedSecret(value)

    def pre_save(self, model_instance, add):
        # A secret never read is written back sealed, with no decryption to save its row.
        value = model_instance.__dict__.get(self.attname)
        if isinstance(value, SealedSecret):
            return value
        return super().pre_save(model_instance, add)

    def value_from_object(self, obj):
        # What serializers ask for before value_to_string: the value as held, still sealed
        # when it was never read (reading it through the attribute would decrypt it).
        if self.attname not in obj.__dict__:
            obj.refresh_from_db(fields=[self.attname])
        return obj.__dict__[self.attname]

    def value_to_string(self, obj) -> str:
        # dumpdata (and every serializer) writes the token, marked, never the secret: a
        # fixture or backup file holds no secret in clear.
        value = obj.__dict__.get(self.attname)
        if isinstance(value, SealedSecret | encryption.UnreadableSecret):
            return SEALED_MARK + value.token
        return SEALED_MARK + encryption.encrypt(value) if value else ""

    def to_python(self, value):
        # loaddata: a marked token is the secret sealed, not a secret that happens to look
        # like a token; it is opened (with the keys of the node that wrote it) and stored
        # encrypted again.
        if isinstance(value, str) and value.startswith(SEALED_MARK):
            return SealedSecret(value.removeprefix(SEALED_MARK))
        return super().to_python(value)

    def get_prep_value(self, value):
        if isinstance(value, SealedSecret | encryption.UnreadableSecret):
            return value.token  # written back as it was read
        value = super().get_prep_value(value)
        if not value:
            return value
        return encryption.encrypt(value)
