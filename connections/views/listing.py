"""The Connections page: one page of the table at a time, searched and filtered on the
server, and a small status answer for the live refresh of the pending rows shown."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache

from connections.models import Connection, ConnectionQuerySet, Role, Status
from nodes.models import Mode

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    """The table's GET parameters, each one dropped when it is not a known value (a bad
    link still shows a page, unfiltered on that point)."""

    q: str = ""
    status: str = ""
    mode: str = ""
    role: str = ""

    @classmethod
    def from_query(cls, query) -> Filters:
        def choice(name: str, allowed) -> str:
            value = query.get(name, "").strip()
            return value if value in allowed else ""

        return cls(
            q=query.get("q", "").strip()[:200],
            status=choice("status", Status.values),
            mode=choice("mode", Mode.values),
            role=choice("role", Role.values),
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.status or self.mode or self.role)


def _among(filters: Filters) -> Q:
    """Every filter but the status one (the status counts are taken among these)."""
    condition = Q()
    if filters.q:
        condition &= ConnectionQuerySet.search_condition(filters.q)
    if filters.mode:
        condition &= Q(mode=filters.mode)
    if filters.role:
        condition &= Q(role=filters.role)
    return condition


def _page_number(raw: str | None) -> int:
    """The page asked for, at least 1 (the paginator clamps it to the last page)."""
    try:
        return max(1, int(raw or 1))
    except (TypeError, ValueError):
        return 1


def row_state(connection: Connection) -> str:
    """What a row shows of the status: its status, or "confirming" for a pending one the
    other side accepted (its badge reads differently). The live refresh compares these;
    _row.html writes the same into data-state."""
    return "confirming" if connection.awaits_confirmation else connection.status


@never_cache
@login_required
@permission_required("connections.view_connection", raise_exception=True)
def connection_list(request):
    if "status_of" in request.GET:
        return _status_of(request)
    filters = Filters.from_query(request.GET)
    among = _among(filters)
    # Each row also says whether a change of this side still waits to reach the peer.
    shown = Connection.objects.with_untold().filter(among)
    if filters.status:
        shown = shown.filter(status=filters.status)
    # The status counts (connections/models/connection.py) are taken anyway: the paginator
    # takes its total from them rather than counting the rows once more.
    counts = Connection.objects.status_counts(among)
    paginator = Paginator(shown, PAGE_SIZE)
    paginator.count = counts[filters.status] if filters.status else counts["matching"]
    page = paginator.get_page(_page_number(request.GET.get("page")))
    connections = list(page.object_list)
    if request.GET.get("fragment") == "rows":
        # Kept for older copies of static/js/live-status.js: the current page's rows.
        return render(request, "connections/_rows.html", {"connections": connections})
    return render(
        request,
        "connections/list.html",
        {
            "connections": connections,
            "page_obj": page,
            "filters": filters,
            "counts": counts,
            "status_choices": [(s, label, counts[s]) for s, label in Status.choices],
            "mode_choices": Mode.choices,
            "role_choices": Role.choices,
            "any_pending": any(c.status == Status.PENDING for c in connections),
            "page_size": PAGE_SIZE,
        },
    )


def _asked_states(raw: str) -> dict[uuid.UUID, str]:
    """`<id>[:<state>],…` → {id: state the page shows}; a bare id is shown "pending".
    Bad ids are ignored, and at most a page's worth is read."""
    asked: dict[uuid.UUID, str] = {}
    for item in raw.split(",")[: PAGE_SIZE * 2]:
        text, _, state = item.strip().partition(":")
        try:
            pk = uuid.UUID(text)
        except ValueError:
            continue
        asked[pk] = state or Status.PENDING
        if len(asked) == PAGE_SIZE:
            break
    return asked


def _status_of(request) -> HttpResponse:
    """The rows, among those asked about, whose status changed since the page showed
    them: {"<id>": {"status": …, "html": "<tr…>"}}; a deleted one has status "deleted"
    and no html. The answer is as small as the change, whatever the size of the table."""
    asked = _asked_states(request.GET.get("status_of", ""))
    rows = Connection.objects.with_untold().filter(pk__in=asked)
    found = {c.pk: c for c in rows} if asked else {}
    now = {pk: (row_state(found[pk]) if pk in found else "deleted") for pk in asked}
    # Same question, same answer: the page already has it.
    seen = sorted((str(pk), asked[pk], state) for pk, state in now.items())
    digest = hashlib.sha256(json.dumps(seen).encode())
    etag = f'"{digest.hexdigest()[:32]}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
        response["ETag"] = etag
        return response
    changed = {}
    for pk, state in now.items():
        if state == asked[pk]:
            continue
        if pk in found:
            c = found[pk]
            html = render_to_string("connections/_row.html", {"c": c}, request).strip()
            changed[str(pk)] = {"status": c.status, "state": state, "html": html}
        else:
            changed[str(pk)] = {"status": "deleted", "state": state, "html": ""}
    response = JsonResponse(changed)
    response["ETag"] = etag
    return response
