"""Calling the model AI Assist drafts with: any OpenAI-compatible chat completions API.

The call goes through the node's outbound guard (nodes.client.pinned_target): with
EXALATE_ALLOW_PRIVATE_NETWORKS off, an endpoint that is or resolves to a private address
(a local Ollama, say) is refused before anything is sent. The answer is capped in size and
must come within the caller's deadline. Every failure is one exception, ModelError, whose
message tells an admin what to do. The API key is sent as a Bearer token and never logged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from nodes.client import NodeError, pinned_target, pooled_client

if TYPE_CHECKING:
    import httpx

# httpx is imported by the first call, not with this module (as in nodes/client.py): the
# rules page imports this, and most requests of a web worker never ask a model.

CONNECT_TIMEOUT = 5.0
MAX_ANSWER_BYTES = 1024 * 1024
USER_AGENT = f"exalate-xurrent-node/{settings.EXALATE_VERSION}"


class ModelError(Exception):
    """The model could not give an answer; `kind` for programs, the message for people."""

    KINDS = (
        "blocked",
        "unreachable",
        "timeout",
        "refused",
        "not_found",
        "rate_limited",
        "server_error",
        "bad_answer",
    )

    def __init__(self, kind: str, message: str, *, status: int | None = None):
        assert kind in self.KINDS, kind
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ModelEndpoint:
    url: str
    model: str
    # Kept out of repr(): an endpoint in a traceback or a log line shows no key.
    api_key: str = field(default="", repr=False)

    @property
    def completions_url(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/chat/completions") else f"{base}/chat/completions"

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


def _timeout_error(endpoint: ModelEndpoint, seconds: float) -> ModelError:
    return ModelError(
        "timeout",
        f"The model at {endpoint.host} did not answer within {seconds:g} seconds. It may be "
        "busy or slow: try again, or ask for one script at a time.",
    )


@sensitive_variables("headers", "endpoint")
def chat(
    endpoint: ModelEndpoint,
    messages: list[dict[str, str]],
    *,
    deadline: float,
    time_limit: float,
) -> str:
    """The text of the model's answer to `messages`, asked before `deadline` (a
    time.monotonic() value; `time_limit` is the whole allowance, for the message)."""
    import httpx

    url = endpoint.completions_url
    try:
        target, pin_headers, extensions = pinned_target(url)
    except NodeError as error:
        raise _guard_error(endpoint, error) from None
    headers = {
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        **({"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}),
        **pin_headers,
    }
    body = {"model": endpoint.model, "messages": messages, "temperature": 0.2, "stream": False}
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timeout_error(endpoint, time_limit)
    client = pooled_client(pin_headers.get("Host") or endpoint.host)
    try:
        with client.stream(
            "POST",
            target,
            json=body,
            headers=headers,
            extensions=extensions,
            timeout=httpx.Timeout(left, connect=min(CONNECT_TIMEOUT, left)),
        ) as response:
            raw = _read_capped(response, deadline, endpoint, time_limit)
            status = response.status_code
    except httpx.TimeoutException:
        raise _timeout_error(endpoint, time_limit) from None
    except (httpx.TransportError, httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError):
        raise ModelError(
            "unreachable",
            f"Could not connect to the AI endpoint at {endpoint.host}: is it running, and is "
            "its URL right?",
        ) from None
    _check_status(status, endpoint)
    return _answer_text(raw, endpoint)


def _guard_error(endpoint: ModelEndpoint, error: NodeError) -> ModelError:
    if error.kind == "blocked":
        return ModelError(
            "blocked",
            f"The AI endpoint {endpoint.host} is a private or local network address, which "
            "this node may not call. For a model in your own network (a local Ollama, say) "
            "start the node with EXALATE_ALLOW_PRIVATE_NETWORKS=true.",
        )
    return ModelError("unreachable", f"Could not reach the AI endpoint: {error.message}")


def _read_capped(
    response: httpx.Response, deadline: float, endpoint: ModelEndpoint, time_limit: float
) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise ModelError("bad_answer", "The AI endpoint sent an answer that is far too large.")
        if time.monotonic() > deadline:
            raise _timeout_error(endpoint, time_limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _check_status(status: int, endpoint: ModelEndpoint) -> None:
    if status < 300:
        return
    if status in (401, 403):
        raise ModelError(
            "refused",
            f"The AI endpoint refused the API key (HTTP {status}). Check the key in the AI "
            "Assist settings.",
            status=status,
        )
    if status == 404:
        raise ModelError(
            "not_found",
            f"The AI endpoint answered HTTP 404: check its URL (an OpenAI-compatible base "
            f"URL, usually ending in /v1) and that it has the model {endpoint.model!r}.",
            status=status,
        )
    if status == 429:
        raise ModelError(
            "rate_limited",
            "The AI endpoint says it has had too many requests (HTTP 429): try again later.",
            status=status,
        )
    if status >= 500:
        raise ModelError(
            "server_error",
            f"The AI endpoint had an error (HTTP {status}): the model may be down or "
            "overloaded. Try again later.",
            status=status,
        )
    raise ModelError(
        "bad_answer",
        f"The AI endpoint refused the request (HTTP {status}): check its URL and the model "
        "name in the AI Assist settings.",
        status=status,
    )


def _answer_text(raw: bytes, endpoint: ModelEndpoint) -> str:
    """choices[0].message.content of a chat completion."""
    try:
        body: Any = json.loads(raw)
        content = body["choices"][0]["message"]["content"]
    except (ValueError, UnicodeError, KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str) or not content.strip():
        raise ModelError(
            "bad_answer",
            f"The AI endpoint at {endpoint.host} answered, but not like an OpenAI-compatible "
            "chat completions API (no message in its answer).",
        )
    return content
