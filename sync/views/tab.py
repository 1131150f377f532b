"""The connection's Sync tab (`/connections/<id>/sync/`) and a twin's page.

The tab's changing parts (bulk exalate, the queue, the twins, the errors) are rendered
on their own; each carries a digest of what it shows. While something is pending the
page asks `?status_of=<part>:<digest>,…` every few seconds and gets back only the parts
whose digest changed (static/js/sync-tab.js). Without JavaScript the page works the same,
reloaded by hand (or by a meta refresh while something is pending).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.cache import never_cache

from connections.models import Connection
from sync.forms import RequestIdForm, TriggerForm
from sync.models import SyncError, Twin, TwinStatus
from sync.services.bulk import latest_bulk
from sync.services.overview import (
    RequestLinks,
    open_errors,
    queue_summary,
    replica_json,
    twin_counts,
    twin_history,
    twins_for_tab,
    with_last_events,
)

VIEW = "connections.view_connection"
CHANGE = "connections.change_connection"
PARTS = ("bulk", "queue", "twins", "errors")
TWINS_PER_PAGE = 25
REFRESH_SECONDS = 3
# A form's CSRF token is masked anew on every rendering: it is no change of the part.
CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


@dataclass(frozen=True)
class Part:
    name: str
    html: SafeString
    state: str


def _digest(html: str) -> str:
    return hashlib.sha256(CSRF_VALUE.sub("", html).encode()).hexdigest()[:20]


def _page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or 1))
    except (TypeError, ValueError):
        return 1


def _part_context(request: HttpRequest, connection: Connection) -> dict:
    q = request.GET.get("q", "").strip()[:64]
    status = request.GET.get("status", "")
    status = status if status in TwinStatus.values else ""
    twins = twins_for_tab(connection, q=q, status=status)
    page = Paginator(twins, TWINS_PER_PAGE).get_page(_page_number(request.GET.get("page")))
    links = RequestLinks.of(connection)
    page.object_list = with_last_events(list(page.object_list))
    for twin in page.object_list:
        twin.local_url = links.local(twin.local_request_id)
        twin.remote_url = links.remote(twin)
    queue = queue_summary(connection)
    bulk = latest_bulk(connection)
    return {
        "connection": connection,
        "can_change": request.user.has_perm(CHANGE),
        "links": links,
        "queue": queue,
        "bulk": bulk,
        "has_active_trigger": connection.triggers.filter(active=True).exists(),
        "twins_page": page,
        "twin_filter": {"q": q, "status": status},
        "twin_counts": twin_counts(connection),
        "twin_statuses": TwinStatus.choices,
        "errors": open_errors(connection),
        "pending": queue.pending or bool(bulk and bulk.pending),
    }


def render_parts(request: HttpRequest, connection: Connection) -> tuple[dict[str, Part], bool]:
    context = _part_context(request, connection)
    parts = {}
    for name in PARTS:
        html = render_to_string(f"sync/tab/_{name}.html", context, request)
        parts[name] = Part(name, mark_safe(html), _digest(html))  # noqa: S308 - our template
    return parts, context["pending"]


def render_tab(
    request: HttpRequest,
    connection: Connection,
    *,
    trigger_form: TriggerForm | None = None,
    exalate_form: RequestIdForm | None = None,
    unexalate_form: RequestIdForm | None = None,
    status: int = 200,
) -> HttpResponse:
    parts, pending = render_parts(request, connection)
    context = {
        "connection": connection,
        "can_change": request.user.has_perm(CHANGE),
        "parts": parts,
        "pending": pending,
        "refresh_seconds": REFRESH_SECONDS,
        "triggers": connection.triggers.select_related("created_by").order_by("id"),
        "trigger_form": trigger_form or TriggerForm(),
        "exalate_form": exalate_form or RequestIdForm(prefix="exalate"),
        "unexalate_form": unexalate_form or RequestIdForm(prefix="unexalate"),
        "twin_filter": {
            "q": request.GET.get("q", "").strip()[:64],
            "status": request.GET.get("status", ""),
        },
        "twin_statuses": TwinStatus.choices,
    }
    return render(request, "sync/tab.html", context, status=status)


@never_cache
@login_required
@permission_required(VIEW, raise_exception=True)
def sync_tab(request: HttpRequest, pk) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    if "status_of" in request.GET:
        return _status_of(request, connection)
    return render_tab(request, connection)


def _asked(raw: str) -> dict[str, str]:
    """`bulk:<digest>,queue:<digest>,…` → {part: digest the page shows}; unknown parts
    are ignored, a part not named is sent."""
    asked = {}
    for item in raw.split(",")[: len(PARTS)]:
        name, _, state = item.strip().partition(":")
        if name in PARTS:
            asked[name] = state[:40]
    return asked


def _status_of(request: HttpRequest, connection: Connection) -> JsonResponse:
    """The parts whose digest differs from the page's: {"parts": {name: {"state",
    "html"}}, "pending": bool}. Nothing changed: no parts (a few bytes)."""
    asked = _asked(request.GET.get("status_of", ""))
    parts, pending = render_parts(request, connection)
    changed = {
        name: {"state": part.state, "html": str(part.html)}
        for name, part in parts.items()
        if asked.get(name) != part.state
    }
    return JsonResponse({"parts": changed, "pending": pending})


@login_required
@permission_required(VIEW, raise_exception=True)
def twin_page(request: HttpRequest, pk, twin_id) -> HttpResponse:
    """One twin: both requests, its state, its open errors and what each sync changed."""
    connection = get_object_or_404(Connection, pk=pk)
    twin = get_object_or_404(Twin, connection=connection, twin_id=twin_id)
    errors = open_errors(connection, twin=twin)
    links = RequestLinks.of(connection)
    context = {
        "connection": connection,
        "twin": twin,
        "links": links,
        "local_url": links.local(twin.local_request_id),
        "remote_url": links.remote(twin),
        "can_change": request.user.has_perm(CHANGE),
        "errors": errors,
        "history": twin_history(twin),
        "baseline_json": replica_json(twin.baseline),
        "received_json": replica_json(twin.received),
        "resolved_errors": SyncError.objects.filter(twin=twin, resolved_at__isnull=False)
        .select_related("resolved_by")
        .order_by("-resolved_at")[:10],
        "notes_mapped": twin.note_maps.count(),
    }
    return render(request, "sync/twin.html", context)
