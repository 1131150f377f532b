"""Secrets at rest: what the database holds of a secret is a Fernet token, never the secret.

Keys come from EXALATE_SECRET_KEYS (Fernet keys, comma-separated): the first encrypts and
every one decrypts, which is how a key is rotated: put the new key first, keep the old
one after it, run `python manage.py rotate_secret_keys`, then drop the old one. Without
the setting, one key is derived from SECRET_KEY with HKDF; changing SECRET_KEY then makes
every stored secret unreadable, which is why production should set EXALATE_SECRET_KEYS
(the system check exalate.W002 says so). The derived key also stays last in line to
decrypt when EXALATE_SECRET_KEYS is set, so that moving to the setting needs nothing but
setting it and running `rotate_secret_keys`.

The column helpers at the end work on raw column values (no model field in between), for
the data migration and the rotation command: a row's value is only replaced if it is still
the one that was read, so a change made meanwhile is never overwritten.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

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
    """The Fernet key used when EXALATE_SECRET_KEYS is not set."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode("utf-8")))


def configured_keys() -> tuple[bytes, ...]:
    """The keys in the order they are tried; the first one encrypts."""
    keys = [key.encode("ascii") for key in settings.EXALATE_SECRET_KEYS]
    derived = derived_key(settings.SECRET_KEY)
    return tuple(keys if derived in keys else [*keys, derived])


@lru_cache(maxsize=8)
def _keyring(keys: tuple[bytes, ...]) -> tuple[Fernet, MultiFernet]:
    fernets = [Fernet(key) for key in keys]
    return fernets[0], MultiFernet(fernets)


def encrypt(plain: str) -> str:
    _first, ring = _keyring(configured_keys())
    return ring.encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """The secret in `token`, or an UnreadableSecret when no configured key opens it."""
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
    if len(value) <= PLAIN_MAX_LENGTH:
        return value  # never encrypted
    plain = decrypt(value)
    if isinstance(plain, UnreadableSecret):
        raise InvalidToken
    return plain


def rotate_if_needed(value: str) -> str | None:
    return None if under_first_key(value) else rotated(value)
