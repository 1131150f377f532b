"""What the Sync tab's buttons do. Each is a POST that needs the permission to change
connections, calls one service and redirects back to the tab with a message (a reload
never repeats it). A bad input shows the tab again with the reason beside the field and
changes nothing."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from connections.models import Connection
from sync.forms import RequestIdForm, TriggerForm
from sync.models import SyncError, Trigger, Twin
from sync.services.actions import NotHere, NothingToRetry, resolve, retry_error
from sync.services.bulk import start_bulk_from_page
from sync.services.gateway import NotConfigured
from sync.services.overview import of_connection
from sync.services.scope import ScopeError, exalate_request, unexalate_request
from sync.services.triggers import change_trigger, create_trigger, delete_trigger, switch_trigger
from sync.views.tab import CHANGE, VIEW, render_tab

CAN_CHANGE = [VIEW, CHANGE]


def _button(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A button of the tab: a POST by a logged-in user who may change connections."""
    return login_required(permission_required(CAN_CHANGE, raise_exception=True)(require_POST(view)))


def _back(connection: Connection, anchor: str = "") -> HttpResponseRedirect:
    url = reverse("sync:tab", kwargs={"pk": connection.pk})
    return HttpResponseRedirect(f"{url}#{anchor}" if anchor else url)


def _back_to_next(request: HttpRequest, connection: Connection, anchor: str) -> HttpResponse:
    """Back where the button was (the tab, or a twin's page), never to another site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return _back(connection, anchor)


def _trigger(connection: Connection, trigger_pk: int) -> Trigger:
    return get_object_or_404(Trigger, pk=trigger_pk, connection=connection)


def _when(moment) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


# --- triggers -------------------------------------------------------------------------------


@_button
def add_trigger(request: HttpRequest, pk) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    form = TriggerForm(request.POST)
    if form.is_valid():
        try:
            trigger = create_trigger(
                connection,
                form.cleaned_data["query"],
                note=form.cleaned_data["note"],
                user=request.user,
            )
        except ScopeError as exc:
            form.add_error("query", str(exc))
        else:
            messages.success(
                request,
                f"Trigger added: {trigger.query}. Requests that match it are synced when they "
                "change; Bulk exalate syncs the ones that match now.",
            )
            return _back(connection, "triggers")
    return render_tab(request, connection, trigger_form=form, status=400)


@login_required
@permission_required(CAN_CHANGE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def edit_trigger(request: HttpRequest, pk, trigger_pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    trigger = _trigger(connection, trigger_pk)
    status = 200
    if request.method == "POST":
        form = TriggerForm(request.POST)
        if form.is_valid():
            try:
                change_trigger(trigger, form.cleaned_data["query"], note=form.cleaned_data["note"])
            except ScopeError as exc:
                form.add_error("query", str(exc))
            else:
                messages.success(request, f"Trigger saved: {trigger.query}.")
                return _back(connection, "triggers")
        status = 400
    else:
        form = TriggerForm(initial={"query": trigger.query, "note": trigger.note})
    context = {"connection": connection, "trigger": trigger, "form": form}
    return render(request, "sync/trigger_edit.html", context, status=status)


@_button
def switch_trigger_view(request: HttpRequest, pk, trigger_pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    trigger = _trigger(connection, trigger_pk)
    wanted = request.POST.get("active")
    if wanted not in ("on", "off"):
        messages.error(request, "Say whether to switch the trigger on or off.")
        return _back(connection, "triggers")
    switch_trigger(trigger, wanted == "on")
    if trigger.active:
        messages.success(
            request,
            f"Trigger {trigger.query} is on. What matched while it was off is synced at its "
            "next change, or now with Bulk exalate.",
        )
    else:
        messages.success(
            request, f"Trigger {trigger.query} is off: it starts syncing no more requests."
        )
    return _back(connection, "triggers")


@_button
def delete_trigger_view(request: HttpRequest, pk, trigger_pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    trigger = _trigger(connection, trigger_pk)
    query = trigger.query
    delete_trigger(trigger)
    messages.success(
        request, f"Trigger {query} deleted. The requests it started syncing stay synced."
    )
    return _back(connection, "triggers")


# --- one request ----------------------------------------------------------------------------


@_button
def exalate(request: HttpRequest, pk) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    form = RequestIdForm(request.POST, prefix="exalate")
    if form.is_valid():
        number = form.cleaned_data["request_id"]
        synced = (
            Twin.objects.holding().filter(connection=connection, local_request_id=number).exists()
        )
        try:
            exalate_request(connection, number)
        except (ScopeError, NotConfigured) as exc:
            form.add_error("request_id", str(exc))
        else:
            if synced:
                messages.info(
                    request, f"Request #{number} was synced already: it is synced again now."
                )
            else:
                messages.success(
                    request, f"Request #{number} is exalated: it is sent to the other side now."
                )
            return _back(connection, "twins")
    return render_tab(request, connection, exalate_form=form, status=400)


@_button
def unexalate(request: HttpRequest, pk) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    form = RequestIdForm(request.POST, prefix="unexalate")
    if form.is_valid():
        number = form.cleaned_data["request_id"]
        try:
            unexalate_request(connection, number)
        except ScopeError as exc:
            form.add_error("request_id", str(exc))
        else:
            messages.success(
                request,
                f"Request #{number} is unexalated: it is no longer synced, on both sides, and "
                "its triggers leave it out until it is exalated again.",
            )
            return _back(connection, "twins")
    return render_tab(request, connection, unexalate_form=form, status=400)


# --- bulk exalate ---------------------------------------------------------------------------


@_button
def bulk_exalate(request: HttpRequest, pk) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    try:
        run, started = start_bulk_from_page(connection, request.user)
    except ScopeError as exc:
        messages.error(request, f"Bulk exalate did not start. {exc}")
        return _back(connection, "bulk")
    if started:
        messages.success(
            request,
            "Bulk exalate started: every request that matches an active trigger now and is not "
            "synced yet is synced. Its progress is shown below.",
        )
    else:
        messages.info(
            request,
            "A bulk exalate of this connection is running already (started "
            f"{_when(run.started_at)}): its progress is shown below.",
        )
    return _back(connection, "bulk")


# --- errors ---------------------------------------------------------------------------------


def _error(connection: Connection, error_pk: int) -> SyncError:
    return get_object_or_404(SyncError.objects.filter(of_connection(connection)), pk=error_pk)


def _request_words(error: SyncError) -> str:
    if error.twin and error.twin.local_request_id:
        return f" of request #{error.twin.local_request_id}"
    return ""


@_button
def retry(request: HttpRequest, pk, error_pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    error = _error(connection, error_pk)
    if error.is_resolved:
        messages.info(request, "This error was dealt with already.")
        return _back_to_next(request, connection, "errors")
    try:
        retry_error(error, request.user)
    except (NotHere, NothingToRetry) as exc:
        messages.error(request, str(exc))
        return _back_to_next(request, connection, "errors")
    if error.twin_id:
        messages.success(
            request,
            f"Retried: the newest state{_request_words(error)} is synced now; older changes "
            "that waited are superseded by it.",
        )
    else:
        messages.success(request, "Retried: the next try is now.")
    return _back_to_next(request, connection, "errors")


@_button
def resolve_view(request: HttpRequest, pk, error_pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    error = _error(connection, error_pk)
    if error.is_resolved:
        messages.info(request, "This error was dealt with already.")
        return _back_to_next(request, connection, "errors")
    note = request.POST.get("note", "").strip()[:200]
    try:
        resolve(error, request.user, note=note)
    except NotHere as exc:
        messages.error(request, str(exc))
        return _back_to_next(request, connection, "errors")
    messages.success(
        request,
        f"Resolved: the error{_request_words(error)} is closed and its request is released. "
        "What failed is not sent again; the next change syncs as usual.",
    )
    return _back_to_next(request, connection, "errors")
