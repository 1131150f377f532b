"""The Xurrent page: this node's Xurrent account, its settings and "Check Xurrent"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from nodes.forms import XurrentAccountForm
from nodes.models import GeneralSettings
from xurrent.services import WEBHOOK_PATH, check_xurrent

CHANGE = "nodes.change_generalsettings"


def _require_access(request: HttpRequest) -> None:
    if not (request.user.is_staff or request.user.has_perm(CHANGE)):
        raise PermissionDenied("The Xurrent settings are for the node's admins.")


def _render(request, node, form=None, check=None, status: int = 200) -> HttpResponse:
    can_change = request.user.has_perm(CHANGE)
    context = {
        "node": node,
        "form": form or (XurrentAccountForm(instance=node) if can_change else None),
        "can_change": can_change,
        "check": check,
        "check_ok": check is not None and all(line.ok for line in check),
        "webhook_url": f"{node.base_url}{WEBHOOK_PATH}",
    }
    return render(request, "xurrent/settings.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def xurrent_settings(request: HttpRequest) -> HttpResponse:
    _require_access(request)
    node = GeneralSettings.load()
    if request.method != "POST":
        return _render(request, node)
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied(
            "Changing the Xurrent settings needs the permission to change the General Settings."
        )
    # The form fills its instance as it validates: a copy of its own, so that the values
    # in use, shown beside a refused form, stay the saved ones.
    form = XurrentAccountForm(request.POST, instance=GeneralSettings.objects.get(pk=node.pk))
    if not form.is_valid():
        return _render(request, node, form=form, status=400)
    form.save()
    messages.success(request, "The Xurrent settings are saved. Check Xurrent to try them.")
    return redirect("xurrent:settings")


@login_required
@require_POST
def check(request: HttpRequest) -> HttpResponse:
    _require_access(request)
    node = GeneralSettings.load()
    return _render(request, node, check=check_xurrent(node))
