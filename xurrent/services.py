"""Xurrent's webhooks taken as hints, and "Check Xurrent"."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nodes.models import GeneralSettings
from nodes.wakeup import wake_workers
from xurrent.client import DEFAULT_SOURCE, Purpose, XurrentClient, XurrentError
from xurrent.models import WebhookHint

# Clocks differ a little between Xurrent and this node.
WEBHOOK_LEEWAY_SECONDS = 60
# "Check Xurrent" answers an admin who waits: a short limit and short pauses.
CHECK_TIME_LIMIT = 5.0
CHECK_RETRY_BASE = 0.5
WEBHOOK_PATH = "/api/v1/xurrent/webhook/"
# Webhooks whose payload is the request as a write left it (a note-added one is about a
# note, and is always read back).
REQUEST_WRITE_EVENTS = frozenset({"request.create", "request.update"})


def request_digest(request: Any) -> str:
    """A digest of a request as Xurrent shows it (an API answer, a listed item, a
    webhook's payload): the sync engine tells by it that a webhook or a poll shows exactly
    what its own last write left. Empty for anything that is not a request."""
    if not isinstance(request, dict) or "id" not in request:
        return ""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --- webhooks --------------------------------------------------------------------------------


class WebhookRefused(Exception):
    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def webhook_data(body: Any, public_key_pem: str) -> dict:
    """The fields of a webhook call: its body, or the `data` of its checked JWT.

    With a policy key every call must be signed with it; without one a plain body is taken
    (and a signed one too, unchecked: there is nothing to check it with).
    """
    if not isinstance(body, dict):
        raise WebhookRefused(400, "invalid_request", "A webhook body is a JSON object.")
    token = body.get("jwt")
    if public_key_pem:
        if token is None:
            raise WebhookRefused(
                401,
                "signature_required",
                "This node checks the signature of Xurrent's webhooks (a webhook policy key "
                'is set): send the call signed, as {"jwt": "…"}.',
            )
        return _checked_claims(token, public_key_pem)
    if token is not None:
        return _unchecked_claims(token)
    return body


def _checked_claims(token: Any, public_key_pem: str) -> dict:
    import jwt  # by the first signed webhook, not by every web worker (connections/auth.py)

    if not isinstance(token, str):
        raise WebhookRefused(400, "invalid_request", "jwt must be a string.")
    key = _policy_key(public_key_pem)
    if key is None:
        raise WebhookRefused(
            401,
            "invalid_signature",
            "The webhook policy key set on this node cannot be read: its admin must set it again.",
        )
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            leeway=WEBHOOK_LEEWAY_SECONDS,
            # The audience is the policy's own choice; the signature is what proves the sender.
            options={"verify_aud": False, "require": ["iat"]},
        )
    except jwt.ExpiredSignatureError:
        raise WebhookRefused(
            401, "signature_expired", "The webhook's signature has expired."
        ) from None
    except jwt.ImmatureSignatureError:
        raise WebhookRefused(
            401, "signature_not_yet_valid", "The webhook is signed for a later time."
        ) from None
    except jwt.InvalidSignatureError:
        raise WebhookRefused(
            401,
            "invalid_signature",
            "The webhook's signature does not match the webhook policy key set on this node.",
        ) from None
    except jwt.InvalidTokenError as error:
        raise WebhookRefused(
            401, "invalid_signature", f"The webhook's JWT is not valid: {error}."
        ) from None
    return _data_of(claims)


@lru_cache(maxsize=4)
def _policy_key(public_key_pem: str):
    """The policy's public key (saved only after it was checked, so normally readable)."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return load_pem_public_key(public_key_pem.encode("ascii"))
    except (ValueError, UnicodeError, TypeError):
        return None


def _unchecked_claims(token: Any) -> dict:
    import jwt

    if not isinstance(token, str):
        raise WebhookRefused(400, "invalid_request", "jwt must be a string.")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise WebhookRefused(400, "invalid_request", "jwt is not a JWT.") from None
    return _data_of(claims)


def _data_of(claims: dict) -> dict:
    data = claims.get("data", claims)
    if not isinstance(data, dict):
        raise WebhookRefused(400, "invalid_request", "The JWT's data claim is not an object.")
    return data


def record_webhook(
    served_account: str,
    *,
    event: str,
    object_id: int | None,
    account: str,
    payload: Any = None,
):
    """Keep the hint of a webhook for the account this node serves (`served_account`, as
    its General Settings hold it); refuse any other.
    For a request's create or update, the digest of its payload is kept too. The create
    of a copy this node made is taken and not kept (`is_copy_this_node_made`)."""
    mine = served_account.strip().lower()
    if not mine:
        raise WebhookRefused(
            403,
            "no_account",
            "This node has no Xurrent account set up, so it takes no webhooks.",
        )
    if account.strip().lower() != mine:
        raise WebhookRefused(
            403,
            "wrong_account",
            f"This webhook is for the account {account!r}; this node serves another one.",
        )
    if is_copy_this_node_made(event, payload):
        return None
    digest = request_digest(payload) if event in REQUEST_WRITE_EVENTS else ""
    hint = WebhookHint.objects.create(event=event, object_id=object_id, account=mine, digest=digest)
    # The webhook path's point is speed: a worker waiting for work (up to its idle time,
    # 5 s by default) takes the hint at once, on PostgreSQL by NOTIFY once it is stored.
    wake_workers()
    return hint


def is_copy_this_node_made(event: str, payload: Any) -> bool:
    """The webhook of a request the sync engine created itself: a create with this node's
    source marker and the twin's id in `sourceID`. The engine recorded the request when
    its create was answered, so there is nothing to read back. Storing its hint cost a
    worker round per request on a bulk exalate's receiving side, each looking the request
    up in Xurrent when the hint came before the create's answer was stored."""
    if event != "request.create" or not isinstance(payload, dict):
        return False
    if payload.get("source") != DEFAULT_SOURCE:
        return False
    try:
        uuid.UUID(str(payload.get("sourceID")))
    except ValueError:
        return False
    return True


# --- Check Xurrent ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckLine:
    label: str
    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.label}: {self.text}"


def check_xurrent(node: GeneralSettings | None = None, **client_options) -> list[CheckLine]:
    """Whether this node's Xurrent account answers, and what is wrong if not: one line for
    the URL, the token, the account, the rate budget and webhooks."""
    node = node or GeneralSettings.load()
    url = node.xurrent_api_url
    missing = []
    if not node.xurrent_account:
        missing.append(CheckLine("Account", False, "no Xurrent account id is set."))
    if not node.has_xurrent_token:
        missing.append(CheckLine("API token", False, "no API token is set."))
    if missing:
        return [CheckLine("API URL", True, f"{url} (not called)"), *missing, _webhook_line(node)]

    options = {"time_limit": CHECK_TIME_LIMIT, "retry_base": CHECK_RETRY_BASE, **client_options}
    client = XurrentClient.from_settings(node, purpose=Purpose.INTERACTIVE, **options)
    try:
        person = client.me()
    except XurrentError as error:
        return [*_failed_lines(url, node.xurrent_account, error), _webhook_line(node)]
    return [
        CheckLine("API URL", True, f"{url} answers."),
        CheckLine("API token", True, f"accepted, it belongs to {_name(person)}."),
        _account_line(client, node.xurrent_account),
        _budget_line(client),
        _webhook_line(node),
    ]


def _failed_lines(url: str, account: str, error: XurrentError) -> list[CheckLine]:
    if error.kind in ("unreachable", "bad_answer", "server_error"):
        return [
            CheckLine("API URL", False, error.message),
            CheckLine("API token", False, "not checked."),
            CheckLine("Account", False, "not checked."),
        ]
    answers = CheckLine("API URL", True, f"{url} answers.")
    if error.kind == "unknown_account":
        return [
            answers,
            CheckLine("API token", False, "not checked: the account comes first."),
            CheckLine("Account", False, error.message),
        ]
    if error.kind == "bad_token":
        return [answers, CheckLine("API token", False, error.message)]
    if error.kind == "rate_limited":
        return [answers, CheckLine("Rate budget", False, error.message)]
    return [answers, CheckLine("API token", False, error.message)]


def _account_line(client: XurrentClient, account: str) -> CheckLine:
    try:
        info = client.account_info()
    except XurrentError as error:
        if error.kind != "not_found":
            return CheckLine("Account", False, error.message)
        # Not every deployment answers /account; the token's answer already named it.
        return CheckLine("Account", True, f"{account} answers.")
    return CheckLine("Account", True, f"{account} exists ({_name(info)}).")


def _budget_line(client: XurrentClient) -> CheckLine:
    info = client.last_answer
    if info.rate_remaining is None:
        return CheckLine("Rate budget", True, "Xurrent did not say how many calls are left.")
    of = f" of {info.rate_limit:,}" if info.rate_limit is not None else ""
    until = f", renewed at {info.rate_reset:%H:%M:%S} UTC" if info.rate_reset else ""
    text = f"{info.rate_remaining:,}{of} calls left{until}."
    return CheckLine("Rate budget", info.rate_remaining > 0, text)


def _webhook_line(node: GeneralSettings) -> CheckLine:
    address = f"{node.base_url}{WEBHOOK_PATH}"
    if node.xurrent_webhook_key:
        return CheckLine("Webhooks", True, f"signed calls to {address} are taken (policy key set).")
    return CheckLine(
        "Webhooks",
        True,
        f"calls to {address} are taken unsigned (no webhook policy key set).",
    )


def _name(record: dict) -> str:
    name = record.get("name")
    return str(name)[:200] if name else f"#{record.get('id', '?')}"
