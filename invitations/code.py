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

FORMAT_VERSION = 1
MAX_LENGTH = 4096
CHECKSUM_LENGTH = 16
TOKEN_BYTES = 32  # 256 bits
MODES = ("basic", "script")

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
    the full text from the source node when it accepts."""
    description = code.description
    while True:
        body = _body(replace(code, description=description))
        text = f"{body}.{_checksum(body)}"
        if len(text) <= MAX_LENGTH or not description:
            return text
        description = description[: len(description) * 3 // 4]


_SHAPE = re.compile(rf"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{{{CHECKSUM_LENGTH}}}$")


def decode(text: str) -> InvitationCode:
    """Read a pasted code. Whitespace (line breaks from e-mail) is ignored."""
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
        padded = body + "=" * (-len(body) % 4)
        raw = zlib.decompress(base64.urlsafe_b64decode(padded), bufsize=MAX_LENGTH * 4)
        data = json.loads(raw)
        return _from_data(data)
    except InvalidCode:
        raise  # already says what is wrong (an unknown format version)
    except (
        binascii.Error,
        zlib.error,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        OverflowError,
        OSError,
    ):
        raise InvalidCode() from None


def _str(value, *, max_length: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > max_length or (not value and not allow_empty):
        raise ValueError("bad field")
    return value


def _uuid(value) -> str:
    return str(uuid.UUID(_str(value, max_length=36)))


def _from_data(data: dict) -> InvitationCode:
    if data.get("v") != FORMAT_VERSION:
        raise InvalidCode(
            "This invitation code was made by a version of the product this node does not "
            "understand. Ask the other admin to check their version."
        )
    src, conn = data["src"], data["conn"]
    mode = conn["mode"]
    if mode not in MODES:
        raise ValueError("bad mode")
    url = _str(src["url"], max_length=500)
    if not url.startswith(("http://", "https://")):
        raise ValueError("bad url")
    exp = data["exp"]
    if not isinstance(exp, int):
        raise ValueError("bad expiry")
    duid = conn.get("duid")
    return InvitationCode(
        source_uid=_uuid(src["uid"]),
        source_url=url,
        source_short_name=_str(src["sn"], max_length=40),
        source_platform=_str(src["pf"], max_length=20),
        source_version=_str(src["ver"], max_length=20),
        connection_id=_str(conn["id"], max_length=64),
        name=_str(conn["name"], max_length=100),
        description=_str(conn["desc"], max_length=1000, allow_empty=True),
        mode=mode,
        destination_short_name=_str(conn["dsn"], max_length=40),
        destination_uid=None if duid is None else _uuid(duid),
        expires_at=datetime.fromtimestamp(exp, tz=UTC),
        token=_str(data["tok"], max_length=200),
    )
