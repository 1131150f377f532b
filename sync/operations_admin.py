"""The sync in the operations view: triggers, twins, both queues, errors and bulk runs
across connections, read-only, with Retry and Resolve calling the same services as the
Sync tab. Nothing here is secret: replicas hold what the sync rules send."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from connections.admin import ReadOnlyInline, extend_connection_admin
from sync.models import BulkExalate, InboundEvent, SyncError, SyncEvent, Trigger, Twin
from sync.services.actions import NotHere, NothingToRetry, resolve, retry_error
from sync.services.errors import retry_twin

CHANGE_CONNECTIONS = "connections.change_connection"
VIEW_CONNECTIONS = "connections.view_connection"


def request_id_condition(term: str, *fields: str) -> Q | None:
    """A request id typed as 12 or #12: an exact match on the id fields given."""
    text = term.strip().lstrip("#").strip()
    if not text.isdigit() or len(text) > 18:
        return None
    condition = Q()
    for name in fields:
        condition |= Q(**{name: int(text) if name.endswith("local_request_id") else text})
    return condition


class SyncAdmin(admin.ModelAdmin):
    """Read-only rows; staff who may view connections see them, those who may change
    connections may Retry and Resolve (the Sync tab's rule)."""

    list_per_page = 50
    request_fields: tuple[str, ...] = ()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or request.user.has_perm(VIEW_CONNECTIONS)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or request.user.has_perm(VIEW_CONNECTIONS)

    def has_sync_permission(self, request) -> bool:
        return request.user.has_perm(CHANGE_CONNECTIONS)

    def get_search_results(self, request, queryset, search_term):
        # A request id finds its rows by the id itself, not by a text search of each field.
        condition = request_id_condition(search_term, *self.request_fields)
        if condition is not None:
            return queryset.filter(condition), False
        return super().get_search_results(request, queryset, search_term)


def _twin_link(twin: Twin | None):
    if twin is None:
        return "—"
    url = reverse("sync:twin", kwargs={"pk": twin.connection_id, "twin_id": twin.twin_id})
    return format_html('<a href="{}">{}</a>', url, str(twin))


@admin.register(Trigger)
class TriggerAdmin(SyncAdmin):
    list_display = ["query", "connection", "active", "note", "created_at", "created_by"]
    list_filter = ["active", "connection"]
    search_fields = ["query", "note"]
    list_select_related = ["connection", "created_by"]
    actions = ["switch_on", "switch_off"]

    @admin.action(description="Switch the selected triggers on", permissions=["sync"])
    def switch_on(self, request, queryset):
        changed = queryset.update(active=True)
        self.message_user(request, f"{changed} trigger(s) on.", messages.SUCCESS)

    @admin.action(description="Switch the selected triggers off", permissions=["sync"])
    def switch_off(self, request, queryset):
        changed = queryset.update(active=False)
        self.message_user(request, f"{changed} trigger(s) off.", messages.SUCCESS)


@admin.register(Twin)
class TwinAdmin(SyncAdmin):
    list_display = [
        "__str__",
        "connection",
        "status",
        "origin",
        "local_request_id",
        "remote_request_id",
        "dirty",
        "last_seq_sent",
        "last_seq_applied",
        "synced_at",
        "open_errors",
        "sync_tab",
    ]
    list_filter = ["status", "origin", "dirty", "connection"]
    search_fields = ["=remote_request_id", "=twin_id"]
    request_fields = ("local_request_id", "remote_request_id")
    list_select_related = ["connection"]
    exclude = ["lease_until", "lease_token"]
    actions = ["retry_selected"]

    def get_queryset(self, request):
        unresolved = Q(errors__resolved_at__isnull=True)
        return (
            super()
            .get_queryset(request)
            .annotate(open_error_count=Count("errors", filter=unresolved))
        )

    @admin.display(description="open errors", ordering="open_error_count")
    def open_errors(self, obj: Twin) -> int:
        return obj.open_error_count

    @admin.display(description="page")
    def sync_tab(self, obj: Twin):
        return _twin_link(obj)

    @admin.action(
        description="Retry the selected requests (sync their newest state)", permissions=["sync"]
    )
    def retry_selected(self, request, queryset):
        done = 0
        for twin in queryset:
            retry_twin(twin, request.user)
            done += 1
        self.message_user(request, f"{done} request(s) retried.", messages.SUCCESS)


class EventAdmin(SyncAdmin):
    list_filter = ["state", "action", "connection"]
    request_fields = ("twin__local_request_id", "twin__remote_request_id")
    search_fields = ["=uuid"]
    list_select_related = ["connection", "twin"]
    exclude = ["lease_until", "lease_token"]

    @admin.display(description="request")
    def request(self, obj):
        return _twin_link(obj.twin)


@admin.register(SyncEvent)
class SyncEventAdmin(EventAdmin):
    list_display = [
        "created_at",
        "connection",
        "request",
        "seq",
        "action",
        "state",
        "attempts",
        "next_try_at",
        "finished_at",
    ]


@admin.register(InboundEvent)
class InboundEventAdmin(EventAdmin):
    list_display = [
        "received_at",
        "connection",
        "request",
        "seq",
        "action",
        "state",
        "attempts",
        "ack_pending",
        "finished_at",
    ]
    exclude = ["body_digest"]


class OpenFilter(admin.SimpleListFilter):
    title = "open or resolved"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open"), ("no", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(SyncError)
class SyncErrorAdmin(SyncAdmin):
    list_display = [
        "last_seen_at",
        "short_message",
        "level",
        "kind",
        "connection",
        "request",
        "blocking",
        "attempts",
        "next_try_at",
        "resolved_at",
    ]
    list_filter = [OpenFilter, "level", "kind", "place", "blocking", "remote", "connection"]
    search_fields = ["message"]
    request_fields = ("twin__local_request_id", "twin__remote_request_id")
    list_select_related = ["connection", "twin"]
    actions = ["retry_selected", "resolve_selected"]

    @admin.display(description="message")
    def short_message(self, obj: SyncError) -> str:
        return obj.message[:120]

    @admin.display(description="request")
    def request(self, obj: SyncError):
        return _twin_link(obj.twin)

    @admin.action(description="Retry the selected errors", permissions=["sync"])
    def retry_selected(self, request, queryset):
        self._each(request, queryset, retry_error, "retried")

    @admin.action(description="Resolve the selected errors", permissions=["sync"])
    def resolve_selected(self, request, queryset):
        self._each(request, queryset, resolve, "resolved")

    def _each(self, request, queryset, action, done: str) -> None:
        count, skipped = 0, 0
        # A twin retried once settles all of its errors: the later ones are resolved by then.
        for error in queryset.select_related("twin").order_by("id"):
            error.refresh_from_db()
            if error.is_resolved:
                continue
            try:
                action(error, request.user)
            except NotHere:
                skipped += 1
                continue
            except NothingToRetry as exc:
                self.message_user(request, f"Error {error.pk}: {exc}", messages.WARNING)
                continue
            count += 1
        self.message_user(request, f"{count} error(s) {done}.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} error(s) of the other side left alone: they are dealt with there.",
                messages.WARNING,
            )


@admin.register(BulkExalate)
class BulkExalateAdmin(SyncAdmin):
    list_display = [
        "started_at",
        "connection",
        "state",
        "found",
        "exalated",
        "skipped",
        "finished_at",
        "started_by",
        "message",
    ]
    list_filter = ["state", "connection"]
    list_select_related = ["connection", "started_by"]
    exclude = ["lease_until", "lease_token"]


class TriggerInline(ReadOnlyInline):
    model = Trigger
    fields = ["query", "active", "note", "created_at"]
    readonly_fields = fields


class OpenErrorInline(ReadOnlyInline):
    model = SyncError
    verbose_name_plural = "open sync errors"
    fields = ["last_seen_at", "level", "kind", "message", "line", "blocking", "remote"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(resolved_at__isnull=True)


extend_connection_admin(inlines=[TriggerInline, OpenErrorInline])
