"""What an admin on the accepting side reads after a failure, for each failure code."""

from __future__ import annotations

from invitations import code as invitation_code
from nodes.models import GeneralSettings

# Filled in with: {other} (the issuing admin), {source} and {url} (the issuing node),
# {mode}, {own_url} (this node's Exalate URL), {unchanged}, {detail} and {reason}.
MESSAGES = {
    "invalid_code": invitation_code.DAMAGED,
    "invitation_expired": (
        "This invitation code has expired. Ask {other} to regenerate the invitation "
        "and send you the new code."
    ),
    "invitation_revoked": (
        "This invitation code was revoked or replaced by a newer one. Ask {other} to "
        "regenerate the invitation and send you the new code."
    ),
    "invitation_used": (
        "This invitation code has already been accepted by another node, or by this one "
        "for a connection since deleted here. If you need this connection, ask "
        "{other} to initiate a new one for this instance."
    ),
    "wrong_destination": (
        "This invitation code was made for another instance, not this one. Ask "
        "{other} to initiate the connection with this node's Exalate URL "
        "({own_url})."
    ),
    "invitation_not_found": (
        "{source} does not know this invitation code: the "
        "connection may have been deleted there. Ask {other} for a new invitation."
    ),
    "mode_unavailable": (
        "The licence of {source} no longer allows "
        "{mode} mode. Ask {other} to change their licence or to "
        "initiate a Basic connection."
    ),
    "throttled": (
        "{source} received too many attempts in a short time. "
        "{unchanged}: wait a minute, then try again."
    ),
    "unreachable": (
        "Could not reach {url}. {unchanged}: check that the node is "
        "running and reachable from here, then try again."
    ),
    "timeout": (
        "{url} did not answer in time. {unchanged}: try again; "
        "if the other side was already set up, trying again finishes it safely."
    ),
    "blocked": "{detail} {unchanged}.",
    "server_error": ("{url} had an internal error. {unchanged}: try again later, or tell {other}."),
    "not_exalate": "{detail} {unchanged}: check the code's source and try again.",
    "bad_answer": (
        "{url} answered in a way this node does not understand. "
        "{unchanged}: tell {other} and check that both nodes run a current version."
    ),
}
# Any other refusal the issuer answered with.
REFUSED = "{source} refused the invitation{reason}. {unchanged}: contact {other}."


def failure_message(code: str, invitation: invitation_code.InvitationCode, detail: str = "") -> str:
    """What an admin on the accepting side should do after a failure with this code."""
    template = MESSAGES.get(code, REFUSED)
    source, url = invitation.source_short_name, invitation.source_url
    values = {
        "other": f"the admin of {source} ({url})",
        "source": source,
        "url": url,
        "mode": invitation.mode.capitalize(),
        "own_url": GeneralSettings.load().base_url if "{own_url}" in template else "",
        "unchanged": "Nothing was changed on this node",
        "detail": detail,
        "reason": f" ({detail})" if detail else "",
    }
    return template.format(**values)
