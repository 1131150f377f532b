"""How two connected nodes prove who is calling: short-lived JWTs signed with the shared secret.

Every call after activation carries `Authorization: Bearer <JWT>` (HS256, key = the
connection's shared secret) with the claims `iss` (sender's node uid), `aud` (receiver's
node uid), `conn` (the receiver's connection id), `iat`, `exp` (at most a minute ahead)
and `jti`. The receiver remembers every `jti` in the database until the token expires, so
a captured token cannot be played again, whichever worker or server receives it.

The claims are read strictly (DESIGN.md §5): `aud` is one node uid, never a list; `iat`
is at most two minutes old and not in the future beyond the clock skew; `exp` comes at
most a minute after `iat`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from connections.models import Connection, UsedToken
from exalate_site.api_errors import APIError
from nodes.models import GeneralSettings

ALGORITHM = "HS256"
LIFETIME_SECONDS = 60
# How far apart the two nodes' clocks may be (for `exp` and an `iat` in the future).
LEEWAY_SECONDS = 30
MAX_AGE_SECONDS = 120
REQUIRED_CLAIMS = ["iss", "aud", "conn", "iat", "exp", "jti"]
# PyJWT (which loads every algorithm cryptography offers) is imported by the first token
# signed or checked, not with this module: most requests of a web worker need none.


@functools.cache
def _signer():
    """PyJWT's JWS encoder, with an HS256 that takes the key as it is.

    PyJWT's own HS256 first tries to read every key as a PEM, SSH, DER or JWK key, so as to
    refuse an asymmetric key used as an HMAC secret (algorithm confusion, a risk when a
    token is checked against a key an attacker may choose). The keys signed with here are
    this node's own shared secrets, random text; the tries cost more than the signature,
    and the outbox signs a token per notification. Tokens are checked with PyJWT's own
    HS256 (`NodeTokenAuthentication`).
    """
    from jwt.algorithms import HMACAlgorithm
    from jwt.api_jws import PyJWS
    from jwt.exceptions import InvalidKeyError

    class OwnSecret(HMACAlgorithm):
        def prepare_key(self, key: str | bytes) -> bytes:
            if not key:
                raise InvalidKeyError("HMAC key must not be empty.")
            return key.encode() if isinstance(key, str) else key

    signer = PyJWS(algorithms=[ALGORITHM])
    signer.unregister_algorithm(ALGORITHM)
    signer.register_algorithm(ALGORITHM, OwnSecret(OwnSecret.SHA256))
    return signer


def sign_token(*, key: str, issuer: str, audience: str, connection_id: str) -> str:
    """A fresh token for one call to the peer."""
    now = int(time.time())
    claims = {
        "iss": str(issuer),
        "aud": str(audience),
        "conn": str(connection_id),
        "iat": now,
        "exp": now + LIFETIME_SECONDS,
        # 128 random bits (a uuid4 holds 122), without building a UUID to get them.
        "jti": secrets.token_hex(16),
    }
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return _signer().encode(payload, key, algorithm=ALGORITHM)


def token_for(connection: Connection) -> str:
    """A token for calling the peer of `connection` about the peer's side of it."""
    return sign_token(
        key=connection.shared_secret,
        issuer=str(GeneralSettings.load().uid),
        audience=str(connection.remote_uid),
        connection_id=connection.remote_connection_id,
    )


class TokenRejected(exceptions.AuthenticationFailed):
    """401 with a contract code (the peer maps the code to what went wrong)."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail=detail, code=code)


@dataclass(frozen=True)
class RemoteNode:
    """The caller, once its token checked out: the peer of `connection`."""

    connection: Connection

    is_authenticated = True
    is_anonymous = False

    def __str__(self) -> str:
        return f"remote node {self.connection.remote_short_name}"


class NodeTokenAuthentication(BaseAuthentication):
    """Checks the peer's JWT; `request.user` becomes a RemoteNode, `request.auth` the connection."""

    keyword = b"bearer"

    def authenticate_header(self, request) -> str:
        # Having a header makes DRF answer 401 (not 403) to a missing or bad token.
        return 'Bearer realm="exalate-node"'

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            raise exceptions.NotAuthenticated(
                "This endpoint needs a token signed with the connection's shared secret."
            )
        if parts[0].lower() != self.keyword or len(parts) != 2:
            raise TokenRejected("invalid_token", "Send the token as 'Authorization: Bearer …'.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise TokenRejected("invalid_token", "The token is not a JWT.") from None
        connection = self._connection_named_in(token)
        claims = self._verify(token, connection)
        self._refuse_replay(claims)
        return RemoteNode(connection), connection

    def _connection_named_in(self, token: str) -> Connection:
        # The key depends on the connection, so the `conn` claim is read before the
        # signature can be checked; nothing else is trusted until `_verify` has run.
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise TokenRejected("invalid_token", "The token is not a valid JWT.") from None
        if header.get("alg") != ALGORITHM:
            raise TokenRejected("invalid_token", f"Tokens must be signed with {ALGORITHM}.")
        conn = unverified.get("conn")
        connection = None
        if isinstance(conn, str) and conn:
            try:
                connection = Connection.objects.filter(pk=conn).first()
            except (ValidationError, ValueError):
                connection = None
        if connection is None or not connection.is_paired:
            raise TokenRejected(
                "unknown_connection",
                "This node has no connection with the id the token names "
                "(it may have been deleted here).",
            )
        return connection

    def _verify(self, token: str, connection: Connection) -> dict:
        import jwt

        audience = str(GeneralSettings.load().uid)
        try:
            claims = jwt.decode(
                token,
                connection.shared_secret,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=str(connection.remote_uid),
                leeway=LEEWAY_SECONDS,
                # A list `aud` that merely contains this node's uid is refused too.
                options={"require": REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.InvalidSignatureError:
            raise TokenRejected(
                "invalid_signature",
                "The token's signature does not match this connection's shared secret.",
            ) from None
        except jwt.ExpiredSignatureError:
            raise TokenRejected(
                "token_expired", "The token has expired: check both nodes' clocks."
            ) from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected(
                "invalid_token", "The token was issued in the future: check both nodes' clocks."
            ) from None
        except jwt.InvalidAudienceError:
            # Raised only once the signature checked out, so the claims can be read.
            audience_claim = jwt.decode(token, options={"verify_signature": False}).get("aud")
            if not isinstance(audience_claim, str):
                raise TokenRejected(
                    "invalid_token", "The token's aud must be one node uid, not a list."
                ) from None
            raise APIError(
                403, "wrong_audience", "The token was made for another node, not this one."
            ) from None
        except jwt.InvalidIssuerError:
            raise APIError(
                403, "wrong_issuer", "The token was not issued by this connection's remote node."
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(
                "invalid_token", f"The token lacks the {exc.claim!r} claim."
            ) from None
        except jwt.InvalidTokenError:
            raise TokenRejected("invalid_token", "The token is not valid.") from None
        self._check_times(claims["iat"], claims["exp"])
        if not isinstance(claims["jti"], str) or not 8 <= len(claims["jti"]) <= 128:
            raise TokenRejected("invalid_token", "The token's jti must be a string.")
        return claims

    @staticmethod
    def _check_times(iat, exp) -> None:
        """Bound the token's age and lifetime, whatever `exp` the sender chose."""
        if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in (iat, exp)):
            raise TokenRejected("invalid_token", "The token's times are not numbers.")
        now = time.time()
        if iat < now - MAX_AGE_SECONDS:
            raise TokenRejected(
                "token_expired",
                f"The token was issued more than {MAX_AGE_SECONDS // 60} minutes ago: "
                "check both nodes' clocks.",
            )
        if iat > now + LEEWAY_SECONDS:
            raise TokenRejected(
                "invalid_token", "The token was issued in the future: check both nodes' clocks."
            )
        if exp - iat > LIFETIME_SECONDS:
            raise TokenRejected(
                "invalid_token", f"Tokens may be valid for at most {LIFETIME_SECONDS} seconds."
            )

    def _refuse_replay(self, claims: dict) -> None:
        # Remember the jti until the token could no longer pass the expiry check anyway.
        # The primary key makes "first one wins" hold across workers and servers.
        ttl = max(int(claims["exp"] - time.time()) + LEEWAY_SECONDS + 1, 1)
        digest = hashlib.sha256(f"{claims['iss']}\n{claims['jti']}".encode()).hexdigest()
        UsedToken.objects.expired().delete()
        try:
            with transaction.atomic():
                UsedToken.objects.create(
                    digest=digest, expires_at=timezone.now() + timedelta(seconds=ttl)
                )
        except IntegrityError:
            raise TokenRejected("token_replayed", "This token has already been used.") from None


class IsPeerOfThisConnection:
    """The token's connection must be the one in the URL: a token is for one connection."""

    code = "wrong_connection"
    message = "The token was made for another connection than the one in the address."

    def has_permission(self, request, view) -> bool:
        connection = request.auth
        return isinstance(connection, Connection) and str(connection.pk) == str(
            view.kwargs.get("pk")
        )

    def has_object_permission(self, request, view, obj) -> bool:
        return True
