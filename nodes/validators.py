"""Rules on what people type that more than one entry point enforces.

They live on the model fields where they can (forms, serializers and the admin then get
them for free) and are applied to what the API and the commands take in as well.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

import idna
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


# Kept in a text that may span lines (a description); every other control character goes.
LINE_BREAKS = "\t\n\r"


def printable(value: str, *, multiline: bool = False) -> str:
    """`value` without control characters (NUL, escape sequences, C1 controls) and lone
    surrogates, which no text the nodes exchange may hold: a database refuses NUL, and the
    others garble what a person reads. A multi-line text keeps its tabs and line breaks."""
    kept = LINE_BREAKS if multiline else ""
    return "".join(
        char for char in value if char in kept or unicodedata.category(char) not in ("Cc", "Cs")
    )


class InvalidURL(ValueError):
    pass


def normalize_url(value: str) -> str:
    """Lower-case scheme and host, drop the trailing slash; only http(s) base URLs."""
    value = (value or "").strip()
    if not value:
        raise InvalidURL("Enter the destination instance URL.")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise InvalidURL("This is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURL("The URL must start with http:// or https://.")
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidURL("The URL has no host name.")
    if parts.username or parts.password:
        raise InvalidURL("The URL must not contain a user name or password.")
    if parts.query or parts.fragment:
        raise InvalidURL("Enter the instance's base URL, without ? or # parts.")
    host = _checked_host(host)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def _checked_host(host: str) -> str:
    """The host in the ASCII form used on the wire; InvalidURL when it cannot be one."""
    if ":" in host:
        try:
            if "%" in host:  # a zone id only means something on this machine
                raise ValueError
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise InvalidURL("The URL's IPv6 address is not valid.") from None
    try:
        if not host.isascii():
            # Internationalised names travel as punycode (what the DNS and the TLS
            # certificate hold), which also shows plainly what was typed.
            host = idna.encode(host, uts46=True).decode("ascii")
        elif "xn--" in host:
            idna.decode(host)
    except idna.IDNAError:
        raise InvalidURL("The URL's host name is not valid.") from None
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidURL("The URL's host name is not valid.")
    return host


def normalize_newlines(text: str) -> str:
    """Browsers send CRLF from text areas; everything is compared and stored with LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


# An Xurrent account id travels in a header (X-Xurrent-Account): a short name of letters,
# digits and dashes ("widget-data-center"), nothing that could break a header line.
XURRENT_ACCOUNT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MIN_RSA_BITS = 2048


def validate_xurrent_account(value: str) -> None:
    if value and not XURRENT_ACCOUNT_PATTERN.match(value):
        raise ValidationError(
            "An Xurrent account id has only letters, digits, dots, dashes and underscores "
            "(at most 100), as in the address of the account: https://ACCOUNT.xurrent.com.",
            code="xurrent_account",
        )


def validate_rsa_public_key(value: str) -> None:
    """A webhook policy's public key: PEM text of an RSA public key of 2048 bits or more."""
    if not value:
        return
    # Imported here: only saving a key needs it, and page loads should not pay for it.
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(value.strip().encode("ascii"))
    except (ValueError, UnicodeError, TypeError):
        raise ValidationError(
            "This is not a public key in PEM form: paste the whole key of the webhook policy, "
            'from "-----BEGIN PUBLIC KEY-----" to "-----END PUBLIC KEY-----".',
            code="webhook_key",
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValidationError(
            "Xurrent signs webhooks with RS256: the key must be an RSA public key.",
            code="webhook_key",
        )
    if key.key_size < MIN_RSA_BITS:
        raise ValidationError(
            f"The key has {key.key_size} bits; an RSA key of at least {MIN_RSA_BITS} bits "
            "is needed.",
            code="webhook_key",
        )
