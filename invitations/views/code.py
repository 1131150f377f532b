"""The invitation code page (shown once), "Regenerate invitation" and "Revoke".

Only a hash of the token is stored, so the code exists once: it travels in the session
from the step that made it to this page, which takes it out as it shows it. A reload,
another tab or the browser's Back button then finds nothing and offers a new code.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from connections.models import Connection
from connections.services import actions
from invitations.models import Invitation
from invitations.services import issuing

SESSION_KEY = "exalate_fresh_invitation_codes"


def remember_code(request, invitation: Invitation, code: str) -> None:
    """Hand a freshly made code to the code page, which shows it once."""
    fresh = dict(request.session.get(SESSION_KEY, {}))
    fresh[str(invitation.connection_id)] = {"invitation": invitation.pk, "code": code}
    request.session[SESSION_KEY] = fresh


def _take_code(request, connection: Connection) -> tuple[Invitation, str] | None:
    fresh = dict(request.session.get(SESSION_KEY, {}))
    entry = fresh.pop(str(connection.pk), None)
    if entry is None:
        return None
    request.session[SESSION_KEY] = fresh
    if not connection.awaits_acceptance:
        return None  # accepted meanwhile: the code is of no use any more
    invitation = (
        Invitation.objects.valid().filter(connection=connection, pk=entry.get("invitation")).first()
    )
    if invitation is None:
        # Revoked or accepted meanwhile (another tab regenerated it): nothing to show.
        return None
    invitation.mark_shown()
    return invitation, entry["code"]


@login_required
@permission_required("connections.add_connection", raise_exception=True)
@never_cache
def invitation_code(request, pk):
    connection = get_object_or_404(Connection, pk=pk)
    taken = _take_code(request, connection)
    invitation, code = taken if taken else (connection.invitations.first(), None)
    accept_url = f"{connection.remote_url}/connections/accept/" if connection.remote_url else ""
    return render(
        request,
        "invitations/initiate/code.html",
        {
            "connection": connection,
            "invitation": invitation,
            "code": code,
            "accept_url": accept_url,
            "can_regenerate": connection.awaits_acceptance,
            "step": 4,
            "total_steps": 4,
        },
    )


@login_required
@permission_required("connections.add_connection", raise_exception=True)
@require_POST
def regenerate_invitation(request, pk):
    connection = get_object_or_404(Connection, pk=pk)
    try:
        invitation, code = issuing.regenerate_invitation(connection, user=request.user)
    except actions.ConnectionGone as exc:
        messages.error(request, str(exc))
        return redirect("connections:list")
    except actions.ConnectionActionError as exc:
        messages.error(request, str(exc))
        return redirect(connection)
    remember_code(request, invitation, code)
    return redirect("invitations:invitation", pk=connection.pk)


@login_required
@permission_required("connections.add_connection", raise_exception=True)
@require_POST
def revoke_invitation(request, pk):
    connection = get_object_or_404(Connection, pk=pk)
    try:
        revoked = issuing.revoke_invitation(connection, user=request.user)
    except actions.ConnectionGone as exc:
        messages.error(request, str(exc))
        return redirect("connections:list")
    except actions.ConnectionActionError as exc:
        messages.error(request, str(exc))
        return redirect(connection)
    if revoked:
        messages.success(
            request,
            "The invitation code is revoked: it can no longer be accepted. Regenerate the "
            "invitation to send the other admin a new one.",
        )
    else:
        messages.info(
            request, "There was no invitation code that could still be accepted; nothing changed."
        )
    return redirect(connection)
