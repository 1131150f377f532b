"""Rules that travel: export a side's rules as a file, import one with a preview first."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from connections.models import Connection
from sync.forms import ConfirmImportForm, ImportRulesForm
from sync.services import StaleRules, get_current_rules
from sync.services.transfer import (
    ImportPreview,
    ImportRefused,
    export_filename,
    export_rules_json,
    import_rules,
    preview_import,
    read_rules_file,
)
from sync.views.rules_page import CHANGE, VIEW


@login_required
@permission_required(VIEW, raise_exception=True)
@require_GET
def rules_export(request: HttpRequest, pk) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    response = HttpResponse(export_rules_json(connection), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{export_filename(connection)}"'
    return response


def _page(
    request: HttpRequest,
    connection: Connection,
    *,
    upload: ImportRulesForm | None = None,
    preview: ImportPreview | None = None,
    content: str = "",
    refused: str = "",
    status: int = 200,
) -> HttpResponse:
    confirm = None
    if preview is not None:
        confirm = ConfirmImportForm(initial={"content": content, "based_on": preview.based_on})
    context = {
        "connection": connection,
        "current": get_current_rules(connection),
        "upload": upload or ImportRulesForm(),
        "preview": preview,
        "confirm": confirm,
        "refused": refused,
    }
    return render(request, "sync/rules_import.html", context, status=status)


@login_required
@permission_required([VIEW, CHANGE], raise_exception=True)
@require_http_methods(["GET", "HEAD", "POST"])
def rules_import(request: HttpRequest, pk) -> HttpResponse:
    """Upload a file and see what it changes; import it with a second press."""
    connection = get_object_or_404(Connection, pk=pk)
    if request.method != "POST":
        return _page(request, connection)
    if "content" in request.POST:
        return _confirm(request, connection)
    upload = ImportRulesForm(request.POST, request.FILES)
    if not upload.is_valid():
        return _page(request, connection, upload=upload, status=400)
    raw = upload.cleaned_data["rules_file"]
    try:
        preview = preview_import(connection, read_rules_file(raw))
    except ImportRefused as exc:
        return _page(request, connection, upload=upload, refused=str(exc), status=400)
    content = raw.decode("utf-8")  # read_rules_file has decoded it once already
    return _page(request, connection, preview=preview, content=content)


def _confirm(request: HttpRequest, connection: Connection) -> HttpResponse:
    form = ConfirmImportForm(request.POST)
    if not form.is_valid():
        return _page(request, connection, refused="The import was not sent whole.", status=400)
    try:
        rules_file = read_rules_file(form.cleaned_data["content"])
        preview, version = import_rules(
            connection, rules_file, request.user, based_on=form.cleaned_data["based_on"]
        )
    except ImportRefused as exc:
        return _page(request, connection, refused=str(exc), status=400)
    except StaleRules as exc:
        # Someone saved in the meantime: show the preview again against their version.
        preview = preview_import(connection, rules_file)
        return _page(
            request,
            connection,
            preview=preview,
            content=form.cleaned_data["content"],
            refused=f"Version {exc.current.number} was saved while you looked at the "
            "preview. Here is what the file changes now: import again to go ahead.",
            status=409,
        )
    if version is not None:
        messages.success(
            request, f"Rules imported from {rules_file.source}: version {version.number}."
        )
    elif preview.changes_anything:
        messages.success(request, f"Triggers imported from {rules_file.source}.")
    else:
        messages.info(request, "Nothing to import: this connection already has these rules.")
    return redirect("sync:rules", pk=connection.pk)
