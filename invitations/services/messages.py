"""What an admin on the accepting side reads after a failure, for each failure code."""

from __future__ import annotations

from invitations import code as invitation_code
from nodes.models import GeneralSettings


def failure_message(code: str, invitation: invitation_code.InvitationCode, detail: str = "") -> str:
    """What an admin on the accepting side should do after a failure with this code."""
    other = f"the admin of {invitation.source_short_name} ({invitation.source_url})"
    unchanged = "Nothing was changed on this node"
    messages = {
        "invalid_code": invitation_code.DAMAGED,
        "invitation_expired": (
            f"This invitation code has expired. Ask {other} to regenerate the invitation "
            "and send you the new code."
        ),
        "invitation_revoked": (
            f"This invitation code was revoked or replaced by a newer one. Ask {other} to "
            "regenerate the invitation and send you the new code."
        ),
        "invitation_used": (
            "This invitation code has already been accepted by another node, or by this one "
            "for a connection since deleted here. If you need this connection, ask "
            f"{other} to initiate a new one for this instance."
        ),
        "wrong_destination": (
            "This invitation code was made for another instance, not this one. Ask "
            f"{other} to initiate the connection with this node's Exalate URL "
            f"({GeneralSettings.load().base_url})."
        ),
        "invitation_not_found": (
            f"{invitation.source_short_name} does not know this invitation code: the "
            f"connection may have been deleted there. Ask {other} for a new invitation."
        ),
        "mode_unavailable": (
            f"The licence of {invitation.source_short_name} no longer allows "
            f"{invitation.mode.capitalize()} mode. Ask {other} to change their licence or to "
            "initiate a Basic connection."
        ),
        "throttled": (
            f"{invitation.source_short_name} received too many attempts in a short time. "
            f"{unchanged}: wait a minute, then try again."
        ),
        "unreachable": (
            f"Could not reach {invitation.source_url}. {unchanged}: check that the node is "
            "running and reachable from here, then try again."
        ),
        "timeout": (
            f"{invitation.source_url} did not answer in time. {unchanged}: try again; "
            "if the other side was already set up, trying again finishes it safely."
        ),
        "blocked": f"{detail} {unchanged}.",
        "server_error": (
            f"{invitation.source_url} had an internal error. {unchanged}: try again later, "
            f"or tell {other}."
        ),
        "not_exalate": f"{detail} {unchanged}: check the code's source and try again.",
        "bad_answer": (
            f"{invitation.source_url} answered in a way this node does not understand. "
            f"{unchanged}: tell {other} and check that both nodes run a current version."
        ),
    }
    if code in messages:
        return messages[code]
    reason = f" ({detail})" if detail else ""
    return (
        f"{invitation.source_short_name} refused the invitation{reason}. {unchanged}: "
        f"contact {other}."
    )
