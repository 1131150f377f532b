"""Rules on what people type that more than one entry point enforces."""

from django.core.exceptions import ValidationError

SHORT_NAME_MAX_LENGTH = 40
NAME_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 1000
SHORT_NAME_PUNCTUATION = " .-_"


def validate_short_name(value: str) -> None:
    if not all(ch.isalnum() or ch in SHORT_NAME_PUNCTUATION for ch in value):
        raise ValidationError(
            "Use only letters, digits, spaces and the characters . - _",
            code="short_name_characters",
        )
