"""AI Assist on the sync rules page, and the page where staff set up its endpoint.

A draft is asked for with the rules form itself (its scripts and samples go along). The
answer is the rules page with the draft in the boxes; asked with fetch() (Accept:
application/json) it is JSON with the same panel as HTML, which the page's script puts
in place. Nothing is saved here.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_http_methods, require_POST

from connections.models import Connection
from nodes.forms import AIAssistForm
from nodes.models import GeneralSettings, Mode
from nodes.validators import normalize_newlines
from sync.forms import AssistForm, RulesForm, SamplesForm
from sync.services.assist import AssistAsk, AssistRefused, Draft, draft_rules
from sync.services.model_client import ModelError
from sync.views.rules_page import (
    BASIC_REFUSED,
    CHANGE,
    SETTINGS_CHANGE,
    VIEW,
    AssistPanel,
    _remember_samples,
    _render,
)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _ask(request: HttpRequest, assist_form: AssistForm, samples_form: SamplesForm) -> AssistAsk:
    samples_form.is_valid()
    samples = samples_form.cleaned_data
    return AssistAsk(
        words=assist_form.cleaned_data["assist_words"],
        directions=assist_form.directions,
        outgoing=normalize_newlines(request.POST.get("outgoing", "")),
        incoming=normalize_newlines(request.POST.get("incoming", "")),
        # Invalid samples: the test run says so; the model gets none.
        sample_request=samples.get("sample_request"),
        sample_replica=samples.get("sample_replica"),
        first_sync=samples.get("first_sync", False),
        send_samples=assist_form.cleaned_data["assist_send_samples"],
    )


def _with_draft(request: HttpRequest, draft: Draft) -> RulesForm:
    """The rules form as the admin sent it, with the drafted scripts in the boxes."""
    data = request.POST.copy()
    for direction, text in draft.scripts.items():
        data[direction] = text
    data["assist_prompt"] = draft.ask.words
    form = RulesForm(data)
    form.is_valid()  # the draft's compile problems are listed under its box
    return form


def _answer(
    request: HttpRequest,
    connection: Connection,
    panel: AssistPanel,
    *,
    rules_form: RulesForm,
    samples_form: SamplesForm,
    status: int = 200,
) -> HttpResponse:
    if not _wants_json(request):
        return _render(
            request,
            connection,
            rules_form=rules_form,
            samples_form=samples_form,
            assist=panel,
            status=status,
        )
    html = render_to_string(
        "sync/rules/_assist_result.html",
        {"assist": panel, "connection": connection},
        request=request,
    )
    body: dict = {"ok": panel.draft is not None, "html": html, "message": panel.error}
    if panel.draft is not None:
        draft = panel.draft
        body.update(
            scripts=draft.scripts,
            prompt=draft.ask.words,
            problems={d: [p.as_dict() for p in found] for d, found in draft.problems.items()},
        )
    return JsonResponse(body, status=status)


def _status_of(exc: AssistRefused | ModelError) -> int:
    if isinstance(exc, AssistRefused):
        return exc.status
    return 504 if exc.kind == "timeout" else 502


@login_required
@permission_required([VIEW, CHANGE], raise_exception=True)
@require_POST
def rules_assist(request: HttpRequest, pk) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    rules_form, samples_form = RulesForm(request.POST), SamplesForm(request.POST)
    assist_form = AssistForm(request.POST)
    if connection.mode != Mode.SCRIPT:
        if _wants_json(request):
            return JsonResponse({"ok": False, "message": BASIC_REFUSED, "html": ""}, status=409)
        messages.error(request, BASIC_REFUSED)
        return _render(request, connection, status=409)
    panel = AssistPanel.for_user(request.user, form=assist_form)
    if not assist_form.is_valid():
        panel.error = "Nothing was asked: " + " ".join(
            str(e) for errors in assist_form.errors.values() for e in errors
        )
        return _answer(
            request,
            connection,
            panel,
            rules_form=rules_form,
            samples_form=samples_form,
            status=400,
        )
    _remember_samples(request, connection, samples_form)
    try:
        panel.draft = draft_rules(_ask(request, assist_form, samples_form), request.user)
    except (AssistRefused, ModelError) as exc:
        panel.error = str(exc)
        return _answer(
            request,
            connection,
            panel,
            rules_form=rules_form,
            samples_form=samples_form,
            status=_status_of(exc),
        )
    return _answer(
        request,
        connection,
        panel,
        rules_form=_with_draft(request, panel.draft),
        samples_form=samples_form,
    )


# --- the settings page -----------------------------------------------------------------------


def _require_settings_access(request: HttpRequest) -> None:
    if not (request.user.is_staff or request.user.has_perm(SETTINGS_CHANGE)):
        raise PermissionDenied("The AI Assist settings are for the node's admins.")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def ai_settings(request: HttpRequest) -> HttpResponse:
    _require_settings_access(request)
    node = GeneralSettings.load()
    can_change = request.user.has_perm(SETTINGS_CHANGE)
    form = AIAssistForm(instance=node) if can_change else None
    status = 200
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied(
                "Changing AI Assist needs the permission to change the General Settings."
            )
        # A copy of its own: the values in use, shown beside a refused form, stay saved ones.
        form = AIAssistForm(request.POST, instance=GeneralSettings.objects.get(pk=node.pk))
        if form.is_valid():
            form.save()
            messages.success(request, "The AI Assist settings are saved.")
            return redirect("assist:settings")
        status = 400
    context = {
        "node": node,
        "form": form,
        "can_change": can_change,
    }
    return render(request, "sync/ai_settings.html", context, status=status)
