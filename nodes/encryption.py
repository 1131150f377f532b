"""Secrets at rest: what the database holds of a secret is a Fernet token, never the secret.

Keys come from EXALATE_SECRET_KEYS (Fernet keys, comma-separated): the first encrypts and
every one decrypts, which is how a key is rotated: put the new key first, keep the old
one after it, run `python manage.py rotate_secret_keys`, then drop the old one. Without
the setting, one key is derived from SECRET_KEY with HKDF; changing SECRET_KEY then makes
every stored secret unreadable, which is why production should set EXALATE_SECRET_KEYS
(the system check exalate.W002 says so). The derived key also stays last in line to
decrypt when EXALATE_SECRET_KEYS is set, so that moving to the setting needs nothing but
setting it and running `rotate_secret_keys`.

Telling whether a stored secret can be read (`is_readable`) needs neither decryption nor
cryptography: it checks the token's HMAC, as Fernet does before it decrypts, with the
standard library. cryptography (some 7 MB resident) is imported by the first secret
encrypted or decrypted, not with this module, so that a web worker whose pages only ask
whether a connection has its key never loads it.

The column helpers at the end work on raw column values (no model field in between), for
the data migration and the rotation command: a row's value is only replaced if it is still
the one that was read, so a change made meanwhile is never overwritten.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

logger = logging.getLogger(__name__)

# Fixed labels of the derivation: the same SECRET_KEY always gives the same key, and a key
# derived here is of no use for anything else derived from SECRET_KEY.
_HKDF_SALT = b"exalate-for-xurrent"
_HKDF_INFO = b"secrets at rest, v1"


class UnreadableSecret(str):
    """A stored secret that none of the configured keys opens (a key was dropped, or
    SECRET_KEY changed without EXALATE_SECRET_KEYS). It reads as "" (so nothing is signed
    with it and a connection counts as not paired), and is written back unchanged, so that
    restoring the right key brings it back."""

    token: str

    def __new__(cls, token: str) -> UnreadableSecret:
        value = super().__new__(cls, "")
        value.token = token
        return value


@lru_cache(maxsize=8)
def derived_key(secret_key: str) -> bytes:
    """The Fernet key used when EXALATE_SECRET_KEYS is not set: HKDF-SHA256 (RFC 5869) of
    SECRET_KEY, 32 bytes, which is one HMAC to extract and one to expand."""
    extracted = hmac.digest(_HKDF_SALT, secret_key.encode("utf-8"), "sha256")
    return base64.urlsafe_b64encode(hmac.digest(extracted, _HKDF_INFO + b"\x01", "sha256"))


def configured_keys() -> tuple[bytes, ...]:
    """The keys in the order they are tried; the first one encrypts."""
    keys = [key.encode("ascii") for key in settings.EXALATE_SECRET_KEYS]
    derived = derived_key(settings.SECRET_KEY)
    return tuple(keys if derived in keys else [*keys, derived])


@lru_cache(maxsize=8)
def _keyring(keys: tuple[bytes, ...]) -> tuple[Fernet, MultiFernet]:
    from cryptography.fernet import Fernet, MultiFernet

    fernets = [Fernet(key) for key in keys]
    return fernets[0], MultiFernet(fernets)


@lru_cache(maxsize=8)
def _signing_keys(keys: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """The half of each Fernet key that signs its tokens (the other half encrypts)."""
    return tuple(base64.urlsafe_b64decode(key)[:16] for key in keys)


# A Fernet token: version byte 0x80, 8 bytes of time, 16 of IV, the ciphertext (at least
# one block of 16), then the HMAC-SHA256 of all that (32).
_FERNET_VERSION = 0x80
_FERNET_MIN_BYTES = 1 + 8 + 16 + 16 + 32


def is_readable(token: str) -> bool:
    """Whether a configured key opens `token`, told as Fernet tells it before decrypting:
    the token's HMAC is the one the key's signing half gives. A token that passes this
    always decrypts (this node encrypted it), so `decrypt` agrees, without being called."""
    try:
        data = base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, UnicodeError):
        return False
    if len(data) < _FERNET_MIN_BYTES or data[0] != _FERNET_VERSION:
        return False
    signed, signature = data[:-32], data[-32:]
    return any(
        hmac.compare_digest(hmac.digest(key, signed, "sha256"), signature)
        for key in _signing_keys(configured_keys())
    )


def encrypt(plain: str) -> str:
    _first, ring = _keyring(configured_keys())
    return ring.encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """The secret in `token`, or an UnreadableSecret when no configured key opens it."""
    from cryptography.fernet import InvalidToken

    _first, ring = _keyring(configured_keys())
    try:
        return ring.decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        logger.error(
            "A secret stored in the database cannot be decrypted with the configured keys "
            "(EXALATE_SECRET_KEYS, or SECRET_KEY when that is unset): restore the key it "
            "was encrypted with."
        )
        return UnreadableSecret(token)


def under_first_key(token: str) -> bool:
    from cryptography.fernet import InvalidToken

    first, _ring = _keyring(configured_keys())
    try:
        first.decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True


def rotated(token: str) -> str:
    """`token` encrypted again with the first key (InvalidToken when no key opens it)."""
    _first, ring = _keyring(configured_keys())
    return ring.rotate(token.encode("ascii")).decode("ascii")


# --- whole columns ---------------------------------------------------------------------


@dataclass
class ColumnReport:
    changed: int = 0
    unchanged: int = 0
    unreadable: int = 0


@dataclass(frozen=True)
class Column:
    table: str
    column: str
    pk: str

    @classmethod
    def of(cls, model, field_name: str) -> Column:
        return cls(
            model._meta.db_table, model._meta.get_field(field_name).column, model._meta.pk.column
        )


def rewrite_column(connection, column: Column, change: Callable[[str], str | None]) -> ColumnReport:
    """Apply `change` to every non-empty value of `column`: it returns the new value, None
    to leave the value as it is, or raises InvalidToken for a value no key opens."""
    from cryptography.fernet import InvalidToken

    quote = connection.ops.quote_name
    table, name, pk = quote(column.table), quote(column.column), quote(column.pk)
    report = ColumnReport()
    with connection.cursor() as cursor:
        # Identifiers come from the models' metadata, quoted; values are parameters.
        cursor.execute(f"SELECT {pk}, {name} FROM {table} WHERE {name} <> ''")  # noqa: S608
        rows = cursor.fetchall()
        for key, value in rows:
            try:
                new = change(value)
            except InvalidToken:
                report.unreadable += 1
                continue
            if new is None or new == value:
                report.unchanged += 1
                continue
            cursor.execute(
                f"UPDATE {table} SET {name} = %s WHERE {pk} = %s AND {name} = %s",  # noqa: S608
                [new, key, value],
            )
            report.changed += cursor.rowcount
    return report


# A plain secret fitted the old 64-character column; a Fernet token is at least 100 long.
PLAIN_MAX_LENGTH = 64


def encrypt_if_plain(value: str) -> str | None:
    return encrypt(value) if len(value) <= PLAIN_MAX_LENGTH else None


def decrypt_to_plain(value: str) -> str:
    from cryptography.fernet import InvalidToken

    if len(value) <= PLAIN_MAX_LENGTH:
        return value  # never encrypted
    plain = decrypt(value)
    if isinstance(plain, UnreadableSecret):
        raise InvalidToken
    return plain


def rotate_if_needed(value: str) -> str | None:
    return None if under_first_key(value) else rotated(value)
