"""One connection's page and its actions: test, deactivate/activate, delete.

Each action is a POST that checks the permission, calls one service and redirects back
to the page with a message (so a reload never repeats it). Only "Test connection" calls
the peer while the page waits (that call is what it shows); every other action queues the
peer's notification for the worker and answers at once.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from connections.models import Connection
from connections.services import actions, peer

EVENTS_SHOWN = 50


@login_required
@permission_required("connections.view_connection", raise_exception=True)
def connection_detail(request: HttpRequest, pk) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    events = list(connection.events.select_related("actor_user")[: EVENTS_SHOWN + 1])
    context = {
        "connection": connection,
        "events": events[:EVENTS_SHOWN],
        "more_events": len(events) > EVENTS_SHOWN,
        "untold": connection.notifications.latest_unheard(),
    }
    return render(request, "connections/detail.html", context)


@login_required
@permission_required("connections.change_connection", raise_exception=True)
@require_POST
def test(request: HttpRequest, pk) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    check = peer.test_connection(connection)
    if check.ok:
        messages.success(request, f"Test connection: {check.message}", extra_tags="test-result")
    else:
        messages.error(
            request, f"Test connection failed. {check.message}", extra_tags="test-result"
        )
    return redirect(connection)


@login_required
@permission_required("connections.change_connection", raise_exception=True)
@require_POST
def deactivate(request: HttpRequest, pk) -> HttpResponse:
    return _switch(
        request, pk, actions.deactivate_connection, "The connection is deactivated on this side."
    )


@login_required
@permission_required("connections.change_connection", raise_exception=True)
@require_POST
def activate(request: HttpRequest, pk) -> HttpResponse:
    return _switch(
        request, pk, actions.activate_connection, "The connection is active again on this side."
    )


def _switch(
    request: HttpRequest,
    pk,
    action: Callable[..., actions.PeerNotice],
    done: str,
) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    try:
        notice = action(connection, request.user)
    except actions.ConnectionActionError as exc:
        return refused(request, connection, exc)
    _report(request, done, notice)
    return redirect(connection)


@login_required
@permission_required("connections.delete_connection", raise_exception=True)
def delete(request: HttpRequest, pk) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    if request.method != "POST":
        return render(request, "connections/confirm_delete.html", {"connection": connection})
    name = connection.name
    try:
        notice = actions.delete_connection(connection, request.user)
    except actions.ConnectionGone as exc:
        # Delete pressed twice (or in two tabs): the first press already did it.
        messages.error(request, str(exc))
        return redirect("connections:list")
    _report(request, f"The connection \u201c{name}\u201d is deleted.", notice)
    return redirect("connections:list")


def refused(request: HttpRequest, connection: Connection, error: actions.ConnectionActionError):
    """Say why an action was refused, on the connection's page, or on the list when the
    connection no longer exists (deleted meanwhile in another tab or by another admin)."""
    messages.error(request, str(error))
    if isinstance(error, actions.ConnectionGone):
        return redirect("connections:list")
    return redirect(connection)


def _report(request: HttpRequest, done: str, notice: actions.PeerNotice) -> None:
    text = f"{done} {notice.message}".strip()
    if notice.needs_attention:
        messages.warning(request, text)
    else:
        messages.success(request, text)
