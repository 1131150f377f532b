"""The Accept invitation page: paste a code → review what it holds → confirm."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import redirect, render

from invitations.forms import CodeForm, ConfirmForm
from invitations.services.accepting import AcceptError, accept_invitation, find_accepted_connection
from nodes.models import GeneralSettings

PASTE = "invitations/accept.html"
REVIEW = "invitations/review.html"


@login_required
@permission_required("connections.add_connection", raise_exception=True)
def accept(request):
    if request.method != "POST":
        return render(request, PASTE, {"form": CodeForm()})
    if "confirm" in request.POST:
        return _confirm(request)

    form = CodeForm(request.POST)
    if not form.is_valid():
        return render(request, PASTE, {"form": form})
    existing = find_accepted_connection(form.invitation)
    if existing is not None:
        return _already_accepted(request, existing)
    confirm = ConfirmForm(
        initial={
            "code": form.cleaned_data["code"],
            "local_short_name": form.invitation.destination_short_name,
        }
    )
    return _review(request, confirm, form.invitation)


def _confirm(request):
    form = ConfirmForm(request.POST)
    if not form.is_valid():
        if "code" in form.errors:
            # A tampered hidden field: back to the paste form, code kept.
            return render(request, PASTE, {"form": CodeForm(request.POST)})
        return _review(request, form, form.invitation)
    try:
        result = accept_invitation(
            form.cleaned_data["code"],
            local_short_name=form.cleaned_data["local_short_name"],
            user=request.user,
        )
    except AcceptError as error:
        form.add_error(None, error.message)
        return _review(request, form, form.invitation, failed=error.code)
    if not result.created:
        return _already_accepted(request, result.connection)
    name = result.connection.name
    told = result.issuer_told
    if told.told:
        messages.success(request, f"The connection is set up: “{name}” is active on both sides.")
    elif told.queued is not None:
        # The worker delivers the confirmation moments later; the page does not wait.
        messages.success(
            request,
            f"The connection is set up: “{name}” is active on this side. The other side will "
            "be told in a moment, and its side goes active then.",
        )
    else:
        messages.warning(
            request,
            f"The connection “{name}” is set up and active on this side, but the other side "
            f"has not heard it yet. {told.message}",
        )
    return redirect("connections:detail", pk=result.connection.pk)


def _already_accepted(request, connection):
    messages.info(
        request, "This invitation was already accepted on this node: here is its connection."
    )
    return redirect("connections:detail", pk=connection.pk)


def _review(request, form, invitation, *, failed: str = ""):
    node = GeneralSettings.load()
    return render(
        request,
        REVIEW,
        {
            "form": form,
            "invitation": invitation,
            "failed": failed,
            "mode_allowed": invitation.mode in node.available_modes(),
            "is_local": invitation.source_uid == str(node.uid),
        },
    )
