"""Model fields that carry the product's field rules, so every form, serializer built from
a model and the admin apply them without repeating them."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

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


class EncryptedTextField(models.TextField):
    """A secret kept encrypted at rest (nodes/encryption.py): the model attribute holds the
    secret, the column only its Fernet token. An empty value stays empty, so "no secret"
    can still be told and wiped with a plain update. Never shown in forms or the admin.

    Lookups compare tokens, and a token is different every time: filter on emptiness only.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return encryption.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if isinstance(value, encryption.UnreadableSecret):
            return value.token  # written back as it was read
        if not value:
            return value
        return encryption.encrypt(value)
