"""The sync rules page of a connection: edit, version, restore and test-run (Script mode)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import formats, timezone
from django.views.decorators.http import require_http_methods, require_POST

from connections.models import Connection
from nodes.models import GeneralSettings, Mode
from nodes.validators import normalize_newlines
from sync import (
    BASIC_OUTGOING,
    DEFAULT_INCOMING,
    DEFAULT_OUTGOING,
    RulesError,
)
from sync.defaults import basic_fields, basic_incoming
from sync.forms import AssistForm, RulesForm, SamplesForm, TestRequestForm
from sync.models import SyncRuleVersion, Twin
from sync.services import (
    NothingChanged,
    RulesNotEditable,
    StaleRules,
    get_current_rules,
    restore_rules,
    save_rules,
    script_diff,
)
from sync.services.assist import SETUP_HELP, Draft, assist_note, model_endpoint
from sync.services.gateway import GatewayError, NotConfigured, Purpose, get_gateway, read_request
from sync.services.overview import RequestLinks
from sync.services.samples import SampleRun, run_samples
from sync.services.scripts import request_for_scripts
from sync.vocabulary import script_vocabulary

VIEW = "connections.view_connection"
CHANGE = "connections.change_connection"
SETTINGS_CHANGE = "nodes.change_generalsettings"
BASIC_REFUSED = (
    "This connection uses Basic mode: its sync rules are fixed and cannot be edited. "
    "A connection's mode never changes; create a Script mode connection for your own rules."
)


def _samples_key(connection: Connection) -> str:
    return f"rules-samples:{connection.pk}"


def _require_change(request: HttpRequest) -> None:
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied("Changing sync rules needs the permission to change connections.")


def _render(
    request: HttpRequest,
    connection: Connection,
    *,
    rules_form: RulesForm | None = None,
    samples_form: SamplesForm | None = None,
    test_run: SampleRun | None = None,
    request_form: TestRequestForm | None = None,
    assist: AssistPanel | None = None,
    status: int = 200,
) -> HttpResponse:
    current = get_current_rules(connection)
    can_edit = connection.mode == Mode.SCRIPT and request.user.has_perm(CHANGE)
    rules_form = rules_form or RulesForm(
        initial={
            "outgoing": current.outgoing,
            "incoming": current.incoming,
            "based_on": current.number or 0,
        }
    )
    samples_form = samples_form or SamplesForm(
        initial=request.session.get(_samples_key(connection)) or SamplesForm.defaults()
    )
    if not can_edit:
        for field in rules_form.fields.values():
            field.widget.attrs["readonly"] = True
    versions = connection.rule_versions.select_related("created_by").order_by("-number")
    # Text typed here that differs from the rules in force: leaving the page asks first.
    unsaved = rules_form.is_bound and (
        normalize_newlines(rules_form.data.get("outgoing", "")),
        normalize_newlines(rules_form.data.get("incoming", "")),
    ) != (current.outgoing, current.incoming)
    basic_team = GeneralSettings.load().basic_team
    context = {
        "unsaved": unsaved,
        "connection": connection,
        "current": current,
        "next_number": (current.number or 0) + 1,
        "can_edit": can_edit,
        "rules_form": rules_form,
        "samples_form": samples_form,
        "request_form": request_form or TestRequestForm(),
        "test_run": test_run,
        "versions": versions,
        "basic_fields": basic_fields(basic_team),
        "basic_outgoing": BASIC_OUTGOING,
        "basic_incoming": basic_incoming(basic_team),
        # For the editor's completion (as JSON) and the help: what the sandbox offers.
        "vocabulary": script_vocabulary(),
        "assist": assist or AssistPanel.for_user(request.user),
        # ?editor=plain: the page without the script editor, its boxes plain textareas.
        "plain_editor": request.GET.get("editor") == "plain",
    }
    return render(request, "sync/rules.html", context, status=status)


@dataclass
class AssistPanel:
    """The AI Assist panel of the rules page: set up or not, the question, the draft."""

    configured: bool
    host: str = ""
    model: str = ""
    can_configure: bool = False
    form: AssistForm | None = None
    draft: Draft | None = None
    error: str = ""
    time_limit: float = 0.0
    setup_help: str = SETUP_HELP

    @classmethod
    def for_user(cls, user, **kwargs) -> AssistPanel:
        endpoint = model_endpoint()
        kwargs.setdefault("form", AssistForm())
        return cls(
            configured=endpoint is not None,
            host=endpoint.host if endpoint else "",
            model=endpoint.model if endpoint else "",
            can_configure=user.is_staff or user.has_perm(SETTINGS_CHANGE),
            time_limit=settings.EXALATE_AI_TIMEOUT,
            **kwargs,
        )


@login_required
@permission_required(VIEW, raise_exception=True)
@require_http_methods(["GET", "POST"])
def rules(request: HttpRequest, pk) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    if request.method == "GET":
        return _render(request, connection)

    _require_change(request)
    rules_form, samples_form = RulesForm(request.POST), SamplesForm(request.POST)
    if connection.mode != Mode.SCRIPT:
        messages.error(request, BASIC_REFUSED)
        return _render(request, connection, status=409)
    if not rules_form.is_valid():
        return _render(
            request, connection, rules_form=rules_form, samples_form=samples_form, status=400
        )
    try:
        _save(request, connection, rules_form.cleaned_data)
    except StaleRules as exc:
        return _stale(request, connection, exc.current, samples_form)
    except RulesError as exc:  # the form compiled them; kept for safety
        for direction, problems in exc.problems.items():
            rules_form.add_error(direction, [str(p) for p in problems])
        return _render(
            request, connection, rules_form=rules_form, samples_form=samples_form, status=400
        )
    _remember_samples(request, connection, samples_form)
    return redirect("sync:rules", pk=connection.pk)


def _save(request: HttpRequest, connection: Connection, data: dict) -> None:
    """Save the typed rules as the next version and say so (or that nothing changed)."""
    # A text that started as an AI Assist draft says so in the history, with the words.
    prompt = data["assist_prompt"]
    note = assist_note(data["note"], prompt) if prompt else data["note"]
    try:
        version = save_rules(
            connection,
            data["outgoing"],
            data["incoming"],
            request.user,
            note=note,
            based_on=data["based_on"],
            assist_prompt=prompt,
        )
    except NothingChanged as exc:
        messages.info(
            request, f"Nothing to save: the rules are the same as version {exc.current.number}."
        )
    else:
        messages.success(request, f"Sync rules saved as version {version.number}.")


def _stale(
    request: HttpRequest,
    connection: Connection,
    current: SyncRuleVersion,
    samples_form: SamplesForm,
) -> HttpResponse:
    """Someone saved while this admin edited: keep their text, point at the new version."""
    data = request.POST.copy()
    data["based_on"] = str(current.number)  # saving again replaces the newer version
    rules_form = RulesForm(data)
    rules_form.is_valid()
    who = current.created_by or "someone"
    when = formats.date_format(timezone.localtime(current.created_at), "DATETIME_FORMAT")
    rules_form.add_error(
        None,
        f"Version {current.number} was saved by {who} ({when}) while you were editing. "
        "Your text is still below: compare it with that version in the history, then "
        "save again to make yours the next version.",
    )
    return _render(
        request, connection, rules_form=rules_form, samples_form=samples_form, status=409
    )


def _remember_samples(
    request: HttpRequest, connection: Connection, samples_form: SamplesForm
) -> None:
    """Keep the admin's edited samples for the next visit (valid ones only)."""
    if samples_form.is_valid():
        request.session[_samples_key(connection)] = {
            "sample_request": samples_form.data["sample_request"],
            "sample_replica": samples_form.data["sample_replica"],
            "first_sync": samples_form.cleaned_data["first_sync"],
        }


@login_required
@permission_required([VIEW, CHANGE], raise_exception=True)
@require_POST
def rules_test_run(request: HttpRequest, pk) -> HttpResponse:
    """Run the scripts as typed (saved or not) on the samples, or on a real request of
    this node's account read through its Xurrent client; nothing is stored."""
    connection = get_object_or_404(Connection, pk=pk)
    if connection.mode != Mode.SCRIPT:
        messages.error(request, BASIC_REFUSED)
        return _render(request, connection, status=409)
    rules_form, samples_form = RulesForm(request.POST), SamplesForm(request.POST)
    request_form = TestRequestForm(request.POST)
    rules_form.is_valid()
    samples_form.is_valid()
    scripts, samples = rules_form.cleaned_data, samples_form.cleaned_data
    sample_request = samples.get("sample_request")
    request_id: int | None = None
    request_problem = ""
    if not request_form.is_valid():
        request_problem = "The request id is not valid: see the error beside it."
    elif (request_id := request_form.cleaned_data["test_request_id"]) is not None:
        sample_request, request_problem = _real_request(connection, request_id)
        if request_problem:
            request_form.add_error("test_request_id", request_problem)
    run = run_samples(
        scripts.get("outgoing"),
        scripts.get("incoming"),
        sample_request,
        samples.get("sample_replica"),
        first_sync=samples.get("first_sync", False),
        request_problem=request_problem,
    )
    if request_id is not None and not request_problem:
        run.request_id = request_id
        run.request_json = json.dumps(sample_request, indent=2, ensure_ascii=False, default=str)
        run.request_url = RequestLinks.of(connection).local(request_id)
    _remember_samples(request, connection, samples_form)
    return _render(
        request,
        connection,
        rules_form=rules_form,
        samples_form=samples_form,
        test_run=run,
        request_form=request_form,
        status=400 if request_problem else 200,
    )


def _real_request(connection: Connection, request_id: int) -> tuple[dict | None, str]:
    """Request `request_id` as the scripts would get it (with its notes, marked with the
    other side's ids when it is synced here), or None and why it cannot be had."""
    try:
        state = read_request(get_gateway(Purpose.INTERACTIVE), request_id)
    except NotConfigured as exc:
        return None, str(exc)
    except GatewayError as exc:
        if exc.kind == "not_found":
            return None, f"Xurrent has no request #{request_id} in this node's account."
        return None, f"Request #{request_id} could not be read from Xurrent: {exc.message}"
    twin = Twin.objects.holding().filter(connection=connection, local_request_id=request_id).first()
    return request_for_scripts(twin, state), ""


def _version_or_404(connection: Connection, number: int) -> SyncRuleVersion:
    try:
        return connection.rule_versions.select_related("created_by").get(number=number)
    except SyncRuleVersion.DoesNotExist:
        raise Http404("No such version of these sync rules.") from None


@login_required
@permission_required(VIEW, raise_exception=True)
def rules_version(request: HttpRequest, pk, number: int) -> HttpResponse:
    """One earlier version, read-only, with what it changed from the one before."""
    connection = get_object_or_404(Connection, pk=pk)
    version = _version_or_404(connection, number)
    previous = connection.rule_versions.filter(number__lt=number).order_by("-number").first()
    if previous is not None:
        base_outgoing, base_incoming = previous.outgoing, previous.incoming
        base_label = f"version {previous.number}"
    else:
        base_outgoing, base_incoming = DEFAULT_OUTGOING, DEFAULT_INCOMING
        base_label = "the defaults"
    label = f"version {number}"
    context = {
        "connection": connection,
        "version": version,
        "current": get_current_rules(connection),
        "base_label": base_label,
        "outgoing_diff": script_diff(
            base_outgoing, version.outgoing, "Outgoing", base_label, label
        ),
        "incoming_diff": script_diff(
            base_incoming, version.incoming, "Incoming", base_label, label
        ),
        "can_edit": connection.mode == Mode.SCRIPT and request.user.has_perm(CHANGE),
    }
    return render(request, "sync/rules_version.html", context)


@login_required
@permission_required([VIEW, CHANGE], raise_exception=True)
@require_POST
def rules_restore(request: HttpRequest, pk, number: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    _version_or_404(connection, number)
    try:
        version = restore_rules(connection, number, request.user)
    except NothingChanged:
        messages.info(request, f"Version {number} is already the rules in force.")
    except RulesNotEditable:
        messages.error(request, BASIC_REFUSED)
    except RulesError as exc:
        messages.error(request, f"Version {number} cannot be restored: {exc}")
    else:
        messages.success(
            request, f"Version {number} restored: it is now in force as version {version.number}."
        )
    return redirect("sync:rules", pk=connection.pk)
