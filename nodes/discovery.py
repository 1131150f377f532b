"""What the initiating side learns about a destination before it creates a connection.

Shared by the initiate wizard and the `initiate_connection` command, so both refuse the
same destinations with the same words. The only network call is `fetch_instance()` in
the client module; a destination that is this node itself is answered locally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nodes import client
from nodes.models import GeneralSettings, License, Mode
from nodes.validators import InvalidURL, normalize_url

NO_URL_HINT = (
    "If this node cannot reach the destination (for example because it is in a private "
    "network), tick \u201cI don't have a URL\u201d instead: its admin then accepts the invitation."
)


class DestinationError(Exception):
    """The destination cannot be used; `message` says why, for the admin."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Destination:
    """The destination as far as this node knows it. Without a URL, nothing is known."""

    url: str = ""
    local: bool = False
    uid: str | None = None
    short_name: str = ""
    platform: str = ""
    # What the destination can take part in; None when it was not asked (no URL).
    modes: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        """Identifies the destination in forms that must not outlive a change of it."""
        return self.url or "no-url"

    @property
    def label(self) -> str:
        return self.url or "a destination without a URL"

    def as_dict(self) -> dict[str, Any]:
        """For the wizard's session storage, which holds JSON only."""
        return {
            "url": self.url,
            "local": self.local,
            "uid": self.uid,
            "short_name": self.short_name,
            "platform": self.platform,
            "modes": None if self.modes is None else list(self.modes),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Destination | None:
        if not isinstance(data, dict):
            return None
        try:
            modes = data.get("modes")
            return cls(
                url=str(data.get("url") or ""),
                local=bool(data.get("local")),
                uid=None if data.get("uid") is None else str(data["uid"]),
                short_name=str(data.get("short_name") or ""),
                platform=str(data.get("platform") or ""),
                modes=None if modes is None else tuple(str(m) for m in modes),
            )
        except (TypeError, ValueError):
            return None


def discover_destination(url: str, *, node: GeneralSettings) -> Destination:
    """Ask the destination at `url` who it is ("" stands for "I don't have a URL").

    `url` must already be normalised. Raises DestinationError with a message for the
    admin when the destination cannot be used.
    """
    if not url:
        return Destination()
    if url == _own_url(node):
        # Calling ourselves over HTTP could deadlock a single-worker server.
        return _local_destination(url, node)
    try:
        info = client.fetch_instance(url)
    except client.NodeError as exc:
        # The guard's own message already points to "I don't have a URL".
        message = exc.message if exc.kind == "blocked" else f"{exc.message} {NO_URL_HINT}"
        base = _base_of(url)
        if exc.kind == "not_exalate" and base != url:
            # Most often an address copied from the browser while on one of its pages.
            message = (
                f"{exc.message} If you copied the address of one of its pages, enter only "
                f"the instance's base URL, for example {base}. {NO_URL_HINT}"
            )
        raise DestinationError(exc.kind, message) from None
    if info.uid == str(node.uid):
        # Another address of this very node (an alias, a proxy): still a local connection.
        return _local_destination(url, node)
    if not info.public:
        raise DestinationError(
            "not_public",
            f"{url} is an Exalate node, but its General Settings say it is not public, so "
            f"it could not take part in a connection started here. {NO_URL_HINT}",
        )
    destination = Destination(
        url=url,
        uid=info.uid,
        short_name=info.short_name,
        platform=info.platform,
        modes=info.modes,
    )
    if not offered_modes(node, destination):
        theirs = ", ".join(m.title() for m in info.modes) or "none"
        mine = ", ".join(m.title() for m in node.available_modes())
        raise DestinationError(
            "no_common_mode",
            f"{url} and this node have no configuration mode in common (it offers: "
            f"{theirs}; this node offers: {mine}), so no connection can be set up with it.",
        )
    return destination


def offered_modes(node: GeneralSettings, destination: Destination | None) -> list[str]:
    """The modes both sides can use now; without a URL, this node's own modes."""
    mine = node.available_modes()
    if destination is None or destination.modes is None:
        return mine
    return [mode for mode in mine if mode in destination.modes]


def missing_mode_reasons(node: GeneralSettings, destination: Destination | None) -> list[str]:
    """One sentence for each mode that is not offered, saying why."""
    reasons = []
    mine = node.available_modes()
    if Mode.SCRIPT not in mine:
        if node.license == License.EVALUATION and node.evaluation_ends_on is not None:
            why = f"this node's evaluation period ended on {node.evaluation_ends_on:%Y-%m-%d}"
        else:
            why = "this node has a Free licence"
        reasons.append(
            f"Script mode is not offered because {why}; Script needs an Evaluation or a "
            "Paid licence. Basic mode is available."
        )
    if destination is not None and destination.modes is not None:
        for mode in Mode:
            if mode in mine and mode not in destination.modes:
                reasons.append(
                    f"{mode.label} mode is not offered because {destination.url} cannot take "
                    f"part in it right now (its licence does not allow it)."
                )
    return reasons


def _base_of(url: str) -> str:
    """The URL without its path: scheme, host and port."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _own_url(node: GeneralSettings) -> str:
    try:
        return normalize_url(node.base_url)
    except InvalidURL:
        return node.base_url


def _local_destination(url: str, node: GeneralSettings) -> Destination:
    return Destination(
        url=url,
        local=True,
        uid=str(node.uid),
        short_name=node.short_name,
        platform=node.platform,
        modes=tuple(node.available_modes()),
    )
