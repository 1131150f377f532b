"""The sync in the operations view: rule versions and triggers on a connection's page;
twins, the queue (both ways) and sync errors across connections, with Retry and Resolve."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from connections.admin import ReadOnlyInline, badge, extend_connection_admin
from sync.models import (
    InboundEvent,
    SyncError,
    SyncEvent,
    SyncRuleVersion,
    Trigger,
    Twin,
    TwinStatus,
)
from sync.services.errors import resolve_error, retry_twin
from sync.services.scope import ScopeError, parse_query


class RuleVersionInline(ReadOnlyInline):
    model = SyncRuleVersion
    fields = ["number", "created_at", "created_by", "note", "outgoing", "incoming"]
    readonly_fields = fields
    ordering = ["-number"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")


class TriggerInline(ReadOnlyInline):
    model = Trigger
    fields = ["query", "active", "note", "created_at"]
    readonly_fields = fields


class OpenErrorInline(ReadOnlyInline):
    model = SyncError
    verbose_name_plural = "open sync errors"
    fields = ["last_seen_at", "twin", "kind", "place", "line", "message", "blocking", "remote"]
    readonly_fields = fields
    ordering = ["-last_seen_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(resolved_at__isnull=True).select_related("twin")


extend_connection_admin(inlines=[TriggerInline, OpenErrorInline, RuleVersionInline])


class StaffActions:
    """Retry and Resolve need the right to change twins; the lists are read-only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_steer_permission(self, request) -> bool:
        return request.user.has_perm("sync.change_twin")


class TriggerForm(forms.ModelForm):
    class Meta:
        model = Trigger
        fields = ["connection", "query", "active", "note"]

    def clean_query(self) -> str:
        try:
            filters = parse_query(self.cleaned_data["query"])
        except ScopeError as exc:
            raise forms.ValidationError(str(exc)) from None
        return "&".join(f"{name}={value}" for name, value in filters.items())


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    form = TriggerForm
    list_display = ["query", "connection", "active", "note", "created_at"]
    list_filter = ["active", "connection"]
    search_fields = ["query", "note", "connection__name"]
    list_select_related = ["connection"]
    fields = ["connection", "query", "active", "note", "created_at", "created_by"]
    readonly_fields = ["created_at", "created_by"]

    def get_readonly_fields(self, request, obj=None):
        # A trigger stays on its connection; make a new one for another.
        return [*self.readonly_fields, "connection"] if obj else self.readonly_fields

    def save_model(self, request, obj: Trigger, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Twin)
class TwinAdmin(StaffActions, admin.ModelAdmin):
    list_display = [
        "__str__",
        "connection",
        "status_badge",
        "origin",
        "dirty",
        "last_seq_sent",
        "last_seq_applied",
        "synced_at",
    ]
    list_filter = ["status", "origin", "dirty", "connection"]
    search_fields = ["twin_id", "remote_request_id", "=local_request_id"]
    list_select_related = ["connection"]
    readonly_fields = [
        "connection",
        "twin_id",
        "status",
        "origin",
        "local_request_id",
        "remote_request_id",
        "last_seq_sent",
        "last_seq_applied",
        "dirty",
        "dirty_at",
        "attempts",
        "next_try_at",
        "baseline",
        "received",
        "conflicts",
        "created_at",
        "synced_at",
        "closed_at",
    ]
    fields = readonly_fields
    actions = ["retry_selected"]

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Twin):
        return badge(obj.status, obj.get_status_display())

    @admin.action(description="Retry selected twins (apply and send their newest state)")
    def retry_selected(self, request, queryset):
        retried = 0
        for twin in queryset.exclude(status=TwinStatus.CLOSED):
            retry_twin(twin, request.user)
            self.log_change(request, twin, "Retried by staff.")
            retried += 1
        self.message_user(request, f"{retried} twin(s) retried.", messages.SUCCESS)

    retry_selected.allowed_permissions = ["steer"]


@admin.register(SyncEvent)
class SyncEventAdmin(StaffActions, admin.ModelAdmin):
    """The queue of events this side sends."""

    list_display = [
        "created_at",
        "twin",
        "connection",
        "seq",
        "action",
        "state",
        "attempts",
        "next_try_at",
        "last_error",
    ]
    list_filter = ["state", "action", "connection"]
    search_fields = ["=uuid", "twin__twin_id", "last_error"]
    list_select_related = ["twin", "connection"]
    date_hierarchy = "created_at"
    fields = [
        "uuid",
        "connection",
        "twin",
        "seq",
        "action",
        "state",
        "attempts",
        "next_try_at",
        "last_error",
        "replica",
        "previous",
        "created_at",
        "sent_at",
        "finished_at",
    ]
    readonly_fields = fields


@admin.register(InboundEvent)
class InboundEventAdmin(StaffActions, admin.ModelAdmin):
    """The inbox: events the other side sent, and what became of them here."""

    list_display = [
        "received_at",
        "twin",
        "connection",
        "seq",
        "action",
        "state",
        "request_id",
        "ack_pending",
        "error",
    ]
    list_filter = ["state", "ack_pending", "connection"]
    search_fields = ["=uuid", "twin__twin_id", "error"]
    list_select_related = ["twin", "connection"]
    date_hierarchy = "received_at"
    fields = [
        "uuid",
        "connection",
        "twin",
        "seq",
        "action",
        "sender_request_id",
        "state",
        "request_id",
        "error",
        "attempts",
        "next_try_at",
        "ack_pending",
        "ack_attempts",
        "ack_next_try_at",
        "replica",
        "previous",
        "received_at",
        "finished_at",
    ]
    readonly_fields = fields


class ResolvedFilter(admin.SimpleListFilter):
    title = "resolved"
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("no", "Open"), ("yes", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(SyncError)
class SyncErrorAdmin(StaffActions, admin.ModelAdmin):
    list_display = [
        "last_seen_at",
        "connection",
        "twin",
        "level",
        "kind",
        "place",
        "line",
        "short_message",
        "blocking",
        "remote",
        "attempts",
        "next_try_at",
        "resolved_at",
    ]
    list_filter = [ResolvedFilter, "kind", "level", "place", "blocking", "remote", "connection"]
    search_fields = ["message", "twin__twin_id", "=event_uuid"]
    list_select_related = ["connection", "twin"]
    date_hierarchy = "last_seen_at"
    fields = [
        "connection",
        "twin",
        "event_uuid",
        "level",
        "kind",
        "place",
        "message",
        "line",
        "source_line",
        "blocking",
        "remote",
        "attempts",
        "next_try_at",
        "created_at",
        "last_seen_at",
        "resolved_at",
        "resolved_by",
        "resolution",
    ]
    readonly_fields = fields
    actions = ["retry_selected", "resolve_selected"]

    @admin.display(description="message")
    def short_message(self, obj: SyncError) -> str:
        return obj.message[:120]

    @admin.action(description="Retry: the cause is fixed, sync the newest state")
    def retry_selected(self, request, queryset):
        twins = {e.twin for e in queryset.filter(remote=False, twin__isnull=False)}
        for twin in twins:
            retry_twin(twin, request.user)
            self.log_change(request, twin, "Retried by staff from its errors.")
        skipped = queryset.filter(remote=True).count()
        text = f"{len(twins)} twin(s) retried."
        if skipped:
            text += f" {skipped} error(s) of the other side are retried there, not here."
        self.message_user(request, text, messages.SUCCESS if not skipped else messages.WARNING)

    @admin.action(description="Resolve: dealt with another way, release the twin")
    def resolve_selected(self, request, queryset):
        count = 0
        for error in queryset.filter(resolved_at__isnull=True):
            resolve_error(error, request.user, note=f"Resolved by {request.user}.")
            count += 1
        self.message_user(request, f"{count} error(s) resolved.", messages.SUCCESS)

    retry_selected.allowed_permissions = ["steer"]
    resolve_selected.allowed_permissions = ["steer"]
