"""A connection's Sync tab: triggers, bulk exalate, one request at a time, the twins, the
queue and the errors with Retry and Resolve."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from connections.models import Connection
from sync.models import SyncError, Trigger
from sync.services.errors import resolve_error, retry_twin
from sync.services.gateway import NotConfigured
from sync.services.scope import (
    ScopeError,
    add_trigger,
    exalate_request,
    parse_query,
    start_bulk_exalate,
    unexalate_request,
)
from sync.services.status import connection_status

VIEW = "connections.view_connection"
CHANGE = "connections.change_connection"
TWINS_SHOWN = 200


class TriggerForm(forms.Form):
    query = forms.CharField(
        max_length=1000,
        label="Filter",
        help_text="Xurrent's filter syntax, e.g. category=incident&team=12",
    )
    note = forms.CharField(max_length=200, required=False)

    def clean_query(self) -> str:
        try:
            parse_query(self.cleaned_data["query"])
        except ScopeError as exc:
            raise forms.ValidationError(str(exc)) from None
        return self.cleaned_data["query"]


class RequestForm(forms.Form):
    request_id = forms.IntegerField(min_value=1, label="Xurrent request id")


def _connection(request: HttpRequest, pk, *, change: bool = False) -> Connection:
    if change and not request.user.has_perm(CHANGE):
        raise PermissionDenied(
            "Changing what is synced needs the permission to change connections."
        )
    return get_object_or_404(Connection, pk=pk)


def _back(connection: Connection) -> HttpResponse:
    return redirect("sync:tab", pk=connection.pk)


@login_required
@permission_required(VIEW, raise_exception=True)
@require_GET
def sync_tab(request: HttpRequest, pk) -> HttpResponse:
    connection = _connection(request, pk)
    return _render(request, connection)


def _render(request, connection, *, trigger_form=None, request_form=None, status=200):
    state = connection_status(connection)
    errors = (
        SyncError.objects.unresolved()
        .filter(connection=connection)
        .select_related("twin")
        .order_by("-last_seen_at")[:100]
    )
    context = {
        "connection": connection,
        "triggers": connection.triggers.order_by("id"),
        "twins": state["twins"][-TWINS_SHOWN:][::-1],
        "twin_count": len(state["twins"]),
        "queue": state["queue"],
        "inbox": state["inbox"],
        "errors": errors,
        "bulk": connection.bulk_exalates.order_by("-started_at").first(),
        "trigger_form": trigger_form or TriggerForm(),
        "request_form": request_form or RequestForm(),
        "can_change": request.user.has_perm(CHANGE),
    }
    return render(request, "sync/tab.html", context, status=status)


@login_required
@require_POST
def add_trigger_view(request: HttpRequest, pk) -> HttpResponse:
    connection = _connection(request, pk, change=True)
    form = TriggerForm(request.POST)
    if not form.is_valid():
        return _render(request, connection, trigger_form=form, status=400)
    trigger = add_trigger(connection, form.cleaned_data["query"], note=form.cleaned_data["note"])
    messages.success(request, f"Trigger added: {trigger.query}")
    return _back(connection)


@login_required
@require_POST
def switch_trigger(request: HttpRequest, pk, trigger_id: int) -> HttpResponse:
    connection = _connection(request, pk, change=True)
    trigger = get_object_or_404(Trigger, pk=trigger_id, connection=connection)
    trigger.active = not trigger.active
    trigger.save(update_fields=["active"])
    messages.success(
        request, f"Trigger {trigger.query} switched {'on' if trigger.active else 'off'}."
    )
    return _back(connection)


@login_required
@require_POST
def bulk_exalate_view(request: HttpRequest, pk) -> HttpResponse:
    connection = _connection(request, pk, change=True)
    try:
        run, started = start_bulk_exalate(connection, request.user, by_worker=True)
    except ScopeError as exc:
        messages.error(request, str(exc))
        return _back(connection)
    if started:
        messages.success(
            request, "Bulk exalate started: the worker syncs every current match of the triggers."
        )
    else:
        messages.info(request, f"A bulk exalate is already {run.get_state_display().lower()}.")
    return _back(connection)


@login_required
@require_POST
def one_request(request: HttpRequest, pk, action: str) -> HttpResponse:
    connection = _connection(request, pk, change=True)
    form = RequestForm(request.POST)
    if not form.is_valid():
        return _render(request, connection, request_form=form, status=400)
    number = form.cleaned_data["request_id"]
    try:
        if action == "exalate":
            exalate_request(connection, number)
            messages.success(request, f"Request #{number} is exalated: the worker sends it.")
        else:
            unexalate_request(connection, number)
            messages.success(request, f"Request #{number} is unexalated on both sides.")
    except (ScopeError, NotConfigured) as exc:
        messages.error(request, str(exc))
    return _back(connection)


@login_required
@require_POST
def error_action(request: HttpRequest, pk, error_id: int, action: str) -> HttpResponse:
    connection = _connection(request, pk, change=True)
    error = get_object_or_404(SyncError, pk=error_id, connection=connection)
    if error.remote:
        messages.error(request, "This error happened on the other side: it is retried there.")
    elif action == "retry" and error.twin is not None:
        retry_twin(error.twin, request.user)
        messages.success(request, "Retried: the newest state is synced again.")
    else:
        resolve_error(error, request.user, note=f"Resolved by {request.user}.")
        messages.success(request, "Resolved.")
    return _back(connection)
