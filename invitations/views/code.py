"""The invitation code page (shown once), "Regenerate invitation" and "Revoke".

Only a hash of the token is stored, so the code exists once: the step that makes it (the
wizard's last step, Regenerate) shows it in the answer to its own POST, and nothing keeps
it afterwards, not even the session (sessions are signed, not encrypted, and sit in the
database and the cache). The page's own address, `/connections/<id>/invitation/`, then
says that the code was shown and offers a new one: a reload, another tab or the browser's
Back button find nothing to show again.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from connections.models import Connection
from connections.services import actions
from connections.views.detail import refused
from invitations.models import Invitation
from invitations.services import issuing

TEMPLATE = "invitations/initiate/code.html"


def render_code_page(request, connection: Connection, invitation: Invitation | None, code=None):
    """The code page: with `code`, the code just made (shown now, once); without, what
    became of it. The answer is never cached, so the code does not outlive this page."""
    if code is not None:
        invitation.mark_shown()
    accept_url = f"{connection.remote_url}/connections/accept/" if connection.remote_url else ""
    return render(
        request,
        TEMPLATE,
        {
            "connection": connection,
            "invitation": invitation,
            "code": code,
            "accept_url": accept_url,
            "can_regenerate": connection.awaits_acceptance,
            # Where a reload goes: this page without the code, not the POST again.
            "page_url": reverse("invitations:invitation", args=[connection.pk]),
            "step": 4,
            "total_steps": 4,
        },
    )


@login_required
@permission_required("connections.add_connection", raise_exception=True)
@never_cache
def invitation_code(request, pk):
    connection = get_object_or_404(Connection, pk=pk)
    return render_code_page(request, connection, connection.invitations.first())


@login_required
@permission_required("connections.add_connection", raise_exception=True)
@require_POST
@never_cache
def regenerate_invitation(request, pk):
    connection = get_object_or_404(Connection, pk=pk)
    try:
        invitation, code = issuing.regenerate_invitation(connection, user=request.user)
    except actions.ConnectionActionError as exc:
        return refused(request, connection, exc)
    return render_code_page(request, connection, invitation, code)


@login_required
@permission_required("connections.add_connection", raise_exception=True)
@require_POST
def revoke_invitation(request, pk):
    connection = get_object_or_404(Connection, pk=pk)
    try:
        revoked = issuing.revoke_invitation(connection, user=request.user)
    except actions.ConnectionActionError as exc:
        return refused(request, connection, exc)
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
