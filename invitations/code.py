"""The invitation code: making it on the source node and reading it on the acceptor.

A code is one line, `<body>.<checksum>`: the body is base64url of zlib-compressed JSON
and the checksum is the first 16 base64url characters (96 bits) of a SHA-256 over the
body. Any changed, missing or extra character breaks the checksum or the layout, so a
damaged copy is caught locally, before anything is sent to the other node.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import uuid
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from django.core.exceptions import ValidationError

from nodes.models import Mode
from nodes.validators import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    SHORT_NAME_MAX_LENGTH,
    InvalidURL,
    normalize_url,
    printable,
    validate_short_name,
)

FORMAT_VERSION = 1
MAX_LENGTH = 4096
CHECKSUM_LENGTH = 16
TOKEN_BYTES = 32  # 256 bits

DAMAGED = (
    "This invitation code is damaged or incomplete. Copy the code again in full "
    "from the admin who sent it, and paste it without changes."
)


class InvalidCode(ValueError):
    """The text is not an intact invitation code."""

    def __init__(self, message: str = DAMAGED):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class InvitationCode:
    source_uid: str
    source_url: str
    source_short_name: str
    source_platform: str
    source_version: str
    connection_id: str
    name: str
    description: str
    mode: str
    destination_short_name: str
    destination_uid: str | None
    expires_at: datetime
    token: str

    def __repr__(self) -> str:
        # The token is the credential: keep it out of tracebacks and logs.
        return f"InvitationCode(connection_id={self.connection_id!r}, name={self.name!r})"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _checksum(body: str) -> str:
    digest = hashlib.sha256(b"exalate-invitation:" + body.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:CHECKSUM_LENGTH]


def _body(code: InvitationCode) -> str:
    data = {
        "v": FORMAT_VERSION,
        "src": {
            "uid": code.source_uid,
            "url": code.source_url,
            "sn": code.source_short_name,
            "pf": code.source_platform,
            "ver": code.source_version,
        },
        "conn": {
            "id": code.connection_id,
            "name": code.name,
            "desc": code.description,
            "mode": code.mode,
            "dsn": code.destination_short_name,
            "duid": code.destination_uid,
        },
        "exp": int(code.expires_at.timestamp()),
        "tok": code.token,
    }
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii").rstrip("=")


def encode(code: InvitationCode) -> str:
    """The code as one line. A long description is shortened to fit; the acceptor gets
    the full text from the source node when it accepts. Characters the acceptor would
    refuse (control characters an admin may have pasted into the name or the description)
    are left out, so that every code this node makes can be read."""
    code = replace(
        code,
        name=printable(code.name),
        description=printable(code.description, multiline=True),
    )
    description = code.description
    while True:
        body = _body(replace(code, description=description))
        text = f"{body}.{_checksum(body)}"
        if len(text) <= MAX_LENGTH or not description:
            return text
        description = description[: len(description) * 3 // 4]


_SHAPE = re.compile(rf"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{{{CHECKSUM_LENGTH}}}$")


def decode(text: str) -> InvitationCode:
    """Read a pasted code. Whitespace (line breaks from e-mail) is ignored.

    The checksum only catches copying mistakes: it has no key, so anyone can build a code
    that passes it around any content. Everything behind it is read as untrusted input,
    and whatever is wrong with it raises InvalidCode, nothing else.
    """
    if not isinstance(text, str):
        raise InvalidCode()
    compact = "".join(text.split())
    if not compact:
        raise InvalidCode("Paste the invitation code you received from the other admin.")
    if len(compact) > MAX_LENGTH or not _SHAPE.match(compact):
        raise InvalidCode()
    body, checksum = compact.split(".")
    if not secrets.compare_digest(_checksum(body), checksum):
        raise InvalidCode()
    try:
        return _from_data(_parse(_inflate(body)))
    except InvalidCode:
        raise  # already says what is wrong (an unknown format version)
    except (binascii.Error, zlib.error, ValueError, TypeError, ValidationError):
        raise InvalidCode() from None


# What a code of this format can hold once decompressed: its texts at their longest, in
# the widest UTF-8, with room to spare. A zlib "bomb" stops here instead of in memory.
MAX_JSON_BYTES = 16 * 1024
# The format nests two levels ({"src": {…}}); json.loads recurses once per level, so a
# deeper text is refused before it is parsed (a RecursionError would be a 500).
MAX_NESTING = 8


def _inflate(body: str) -> bytes:
    packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    inflater = zlib.decompressobj()
    raw = inflater.decompress(packed, MAX_JSON_BYTES)
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        raise ValueError("larger than a code can be, cut short, or followed by more")
    return raw


def _parse(raw: bytes):
    text = raw.decode("utf-8")
    if _nesting_exceeds(text, MAX_NESTING):
        raise ValueError("nested too deeply")
    return json.loads(text, parse_constant=_no_constant)


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit` (without recursing)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _no_constant(name: str):
    raise ValueError(f"{name} is not a value a code holds")


# --- the fields, with the rules the API and the model fields apply to the same values ---

# The API's rule for connection ids (AcceptorSerializer.connection_id).
_CONNECTION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# new_token(): base64url of at least 256 random bits.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43,200}$")
# datetime's range: 1970-01-01 .. 9999-12-31 23:59:59 UTC.
_LAST_TIMESTAMP = 253402300799


def _dict(value) -> dict:
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def _text(value, *, max_length: int, allow_empty: bool = False, multiline: bool = False) -> str:
    if not isinstance(value, str) or len(value) > max_length or (not value and not allow_empty):
        raise ValueError("bad text")
    if printable(value, multiline=multiline) != value:
        raise ValueError("control characters")
    return value


def _uuid(value) -> str:
    return str(uuid.UUID(_text(value, max_length=36)))


def _short_name(value) -> str:
    name = _text(value, max_length=SHORT_NAME_MAX_LENGTH)
    validate_short_name(name)
    return name


def _node_url(value) -> str:
    try:
        return normalize_url(_text(value, max_length=500))
    except InvalidURL as error:
        raise ValueError(str(error)) from None


def _matching(pattern: re.Pattern, value) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError("bad format")
    return value


def _from_data(data) -> InvitationCode:
    data = _dict(data)
    version = data.get("v")
    if type(version) is not int:  # noqa: E721 - True is an int too, and is no version
        raise ValueError("no format version")
    if version != FORMAT_VERSION:
        raise InvalidCode(
            "This invitation code was made by a version of the product this node does not "
            "understand. Ask the other admin to check their version."
        )
    src, conn = _dict(data.get("src")), _dict(data.get("conn"))
    mode = conn.get("mode")
    if mode not in Mode.values:
        raise ValueError("bad mode")
    exp = data.get("exp")
    if type(exp) is not int or not 0 <= exp <= _LAST_TIMESTAMP:  # noqa: E721
        raise ValueError("bad expiry")
    duid = conn.get("duid")
    return InvitationCode(
        source_uid=_uuid(src.get("uid")),
        source_url=_node_url(src.get("url")),
        source_short_name=_short_name(src.get("sn")),
        source_platform=_text(src.get("pf"), max_length=20),
        source_version=_text(src.get("ver"), max_length=20),
        connection_id=_matching(_CONNECTION_ID, conn.get("id")),
        name=_text(conn.get("name"), max_length=NAME_MAX_LENGTH),
        description=_text(
            conn.get("desc"), max_length=DESCRIPTION_MAX_LENGTH, allow_empty=True, multiline=True
        ),
        mode=mode,
        destination_short_name=_short_name(conn.get("dsn")),
        destination_uid=None if duid is None else _uuid(duid),
        expires_at=datetime.fromtimestamp(exp, tz=UTC),
        token=_matching(_TOKEN, data.get("tok")),
    )
