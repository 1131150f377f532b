"""The shared secret of a connection, agreed without ever crossing the wire (DESIGN.md §5).

Each side has an X25519 key pair for the connection and sends only its public key: the
acceptor in the accept call, the issuer in its answer. Both then derive the same secret:

    HKDF-SHA256(X25519(own private key, other's public key),
                salt = SHA-256 of the invitation token (its 32 bytes),
                info = b"exalate-connection" + source connection id + destination connection id)

32 bytes, written as unpadded base64url (43 characters): the key of the node JWTs. Anyone
who saw the code, the accept call or its answer learns public values only.

The issuer's private key lives for one request. The acceptor's is derived from this
node's SECRET_KEY and the code, so a retry after a lost answer sends the same public key
(the issuer recognises the same acceptor) without a private key kept anywhere.

cryptography (some 7 MB resident) is imported by the first key made or read, not with
this module: a web worker that serves no accept never loads it.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from django.utils.crypto import salted_hmac

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )

KEY_BYTES = 32
SECRET_BYTES = 32
INFO_PREFIX = b"exalate-connection"


class InvalidPublicKey(ValueError):
    pass


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_key_text(private: X25519PrivateKey) -> str:
    return _b64(private.public_key().public_bytes_raw())


def read_public_key(text: str) -> X25519PublicKey:
    """A peer's public key from its base64url text; InvalidPublicKey when it is not one."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    if not isinstance(text, str) or len(text) not in (43, 44):
        raise InvalidPublicKey("A public key is 32 bytes written as base64url.")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidPublicKey("A public key is 32 bytes written as base64url.") from None
    if len(raw) != KEY_BYTES or _b64(raw) != text.rstrip("="):
        raise InvalidPublicKey("A public key is 32 bytes written as base64url.")
    return X25519PublicKey.from_public_bytes(raw)


def new_private_key() -> X25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.generate()


def acceptor_private_key(token_hash: str, source_connection_id: str) -> X25519PrivateKey:
    """The accepting node's key for one code: the same on every retry, unknown elsewhere."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    seed = salted_hmac(
        "exalate.invitations.acceptor-key",
        f"{token_hash}/{source_connection_id}",
        algorithm="sha256",
    ).digest()
    return X25519PrivateKey.from_private_bytes(seed)


def derive_secret(
    private: X25519PrivateKey,
    peer_public_key: str,
    *,
    token_hash: str,
    source_connection_id: str,
    destination_connection_id: str,
) -> str:
    """The connection's shared secret, the same on both sides; InvalidPublicKey for a bad
    or degenerate public key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    try:
        agreed = private.exchange(read_public_key(peer_public_key))
    except ValueError as error:  # an all-zero result: a low-order point was sent
        raise InvalidPublicKey(str(error)) from None
    info = INFO_PREFIX + source_connection_id.encode() + destination_connection_id.encode()
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=SECRET_BYTES, salt=bytes.fromhex(token_hash), info=info
    )
    return _b64(hkdf.derive(agreed))
