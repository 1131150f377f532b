"""The invitation code page (shown once), "Regenerate invitation" and "Revoke".

Only a hash of the token is stored, so the code exists once: it travels in the session
from the step that made it to this page, which takes it out as it shows it. A reload,
another tab or the browser's Back button then finds nothing and offers a new code.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from connections.models import Connection, Role, Status
from connections.services import revoke_pending_invitations
from invitations.models import Invitation
from invitations.services import issue_invitation

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
    if not can_regenerate(connection):
        return None  # accepted meanwhile: the code is of no use any more
    invitation = (
        Invitation.objects.valid().filter(connection=connection, pk=entry.get("invitation")).first()
    )
    if invitation is None:
        # Revoked or accepted meanwhile (another tab regenerated it): nothing to show.
        return None
    Invitation.objects.filter(pk=invitation.pk, shown_at__isnull=True).update(
        shown_at=timezone.now()
    )
    return invitation, entry["code"]


def can_regenerate(connection: Connection) -> bool:
    return connection.role == Role.SOURCE and connection.status == Status.PENDING


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
        "connections/initiate/code.html",
        {
            "connection": connection,
            "invitation": invitation,
            "code": code,
            "accept_url": accept_url,
            "can_regenerate": can_regenerate(connection),
            "step": 4,
            "total_steps": 4,
        },
    )


@login_required
@permission_required("connections.add_connection", raise_exception=True)
@require_POST
def regenerate_invitation(request, pk):
    with transaction.atomic():
        # Locked, so an acceptance arriving now cannot slip between the check and the new code.
        connection = get_object_or_404(Connection.objects.select_for_update(), pk=pk)
        if not can_regenerate(connection):
            messages.error(
                request,
                "Only a pending connection that this node initiated has an invitation code; "
                f"this one is {connection.status_in_words}, so no new code was made.",
            )
            return redirect("connections:detail", pk=connection.pk)
        invitation, code = issue_invitation(connection, user=request.user)
    remember_code(request, invitation, code)
    return redirect("connections:invitation", pk=connection.pk)


@login_required
@permission_required("connections.add_connection", raise_exception=True)
@require_POST
def revoke_invitation(request, pk):
    with transaction.atomic():
        # Locked like Regenerate: an acceptance arriving now either wins or finds it revoked.
        connection = get_object_or_404(Connection.objects.select_for_update(), pk=pk)
        if not can_regenerate(connection):
            messages.error(
                request,
                "Only a pending connection that this node initiated has an invitation code; "
                f"this one is {connection.status_in_words}, so nothing was revoked.",
            )
            return redirect(connection)
        revoked = revoke_pending_invitations(connection, user=request.user)
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
