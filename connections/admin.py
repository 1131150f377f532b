"""The operations view: what staff use to watch and steer connections.

Actions call the same services as the connection page, so an action taken here writes
the same events (with the staff user) and tells the peer the same way.
"""

from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.db.models import Q
from django.utils.html import format_html

from connections.models import (
    Connection,
    ConnectionEvent,
    PeerNotification,
    RemoteStatus,
)
from connections.services import actions, outbox


def badge(value: str, label: str):
    if not value:
        return "—"
    return format_html('<span class="badge status-{}">{}</span>', value, label)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def extend_connection_admin(*, inlines=(), actions=()) -> None:
    """How an app built on connections puts its part on a connection's admin page."""
    ConnectionAdmin.extension_inlines = [*ConnectionAdmin.extension_inlines, *inlines]
    ConnectionAdmin.actions = [*ConnectionAdmin.actions, *actions]


class EventInline(ReadOnlyInline):
    model = ConnectionEvent
    fields = ["created_at", "kind", "from_status", "to_status", "message", "actor"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor_user")


class NotificationInline(ReadOnlyInline):
    model = PeerNotification
    verbose_name_plural = "notifications to the peer"
    # The signing key is deliberately absent: it is the shared secret.
    fields = ["created_at", "status", "state", "attempts", "next_attempt_at", "last_error"]
    readonly_fields = fields
    ordering = ["-created_at"]


class RemoteStatusFilter(admin.SimpleListFilter):
    title = "status on the remote side"
    parameter_name = "remote_status"

    def lookups(self, request, model_admin):
        return [("none", "Not reported"), *RemoteStatus.choices]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(remote_status="")
        if self.value():
            return queryset.filter(remote_status=self.value())
        return queryset


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    # Only the labels may be edited (see readonly_fields); their rules come with the fields.
    list_display = [
        "name",
        "status_badge",
        "remote_status_badge",
        "peer_told",
        "mode",
        "role",
        "local_short_name",
        "remote_short_name",
        "remote_node",
        "created_at",
        "activated_at",
    ]
    list_filter = ["status", RemoteStatusFilter, "mode", "role"]
    search_fields = [
        "name",
        "description",
        "local_short_name",
        "remote_short_name",
        "remote_url",
        "remote_connection_id",
    ]
    date_hierarchy = "created_at"
    list_per_page = 50
    # Everything the handshake set, and every state, changes only through actions and
    # services: only the labels may be edited here.
    readonly_fields = [
        "id",
        "mode",
        "role",
        "remote_url",
        "remote_uid",
        "remote_connection_id",
        "remote_platform",
        "remote_status",
        "remote_status_at",
        "status",
        "status_reason",
        "created_at",
        "activated_at",
        "created_by",
    ]
    fieldsets = [
        (None, {"fields": ["id", "name", "description", "mode", "role", "created_by"]}),
        ("Status", {"fields": ["status", "status_reason", "remote_status", "remote_status_at"]}),
        (
            "Instances",
            {
                "fields": [
                    "local_short_name",
                    "remote_short_name",
                    "remote_url",
                    "remote_uid",
                    "remote_connection_id",
                    "remote_platform",
                ]
            },
        ),
        ("Dates", {"fields": ["created_at", "activated_at"]}),
    ]
    actions = ["deactivate_selected", "activate_selected"]
    # The apps built on connections (invitations, sync) add their inlines here, from their
    # own admin modules: this one never imports them.
    extension_inlines: list[type[admin.options.InlineModelAdmin]] = []

    class Media:
        css = {"all": ["css/operations.css"]}

    def has_add_permission(self, request):
        # Connections come from the initiate/accept handshake, never from a blank form.
        return False

    def delete_model(self, request, obj: Connection) -> None:
        # Deleting here is the page's Delete: the event names the staff user and the
        # peer's notification is queued for the worker, never a bare row delete.
        self._report(request, actions.delete_connections([obj], request.user), "")

    def delete_queryset(self, request, queryset) -> None:
        self._report(request, actions.delete_connections(queryset, request.user), "")

    def get_search_results(self, request, queryset, search_term):
        # A connection id (this side's or the peer's) finds its row through the primary key
        # or the index, instead of being compared with every text column.
        term = search_term.strip()
        try:
            connection_id = uuid.UUID(term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(Q(pk=connection_id) | Q(remote_connection_id=term)), False

    def get_inlines(self, request, obj):
        return [*self.extension_inlines, EventInline, NotificationInline]

    def get_queryset(self, request):
        return super().get_queryset(request).with_untold()

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Connection):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="remote status", ordering="remote_status")
    def remote_status_badge(self, obj: Connection):
        return badge(obj.remote_status, obj.get_remote_status_display())

    @admin.display(description="peer told", boolean=True)
    def peer_told(self, obj: Connection) -> bool | None:
        if obj.status == "pending":
            return None
        return not obj.has_untold

    @admin.display(description="remote instance", ordering="remote_url")
    def remote_node(self, obj: Connection) -> str:
        return obj.remote_label

    # The bulk actions change every row in one transaction and a few bulk statements, and
    # only queue the peers' notifications: however many connections and however slow their
    # peers, the admin answers at once.

    @admin.action(description="Deactivate selected connections", permissions=["change"])
    def deactivate_selected(self, request, queryset):
        self._report(request, actions.deactivate_connections(queryset, request.user), "deactivated")

    @admin.action(description="Activate selected connections", permissions=["change"])
    def activate_selected(self, request, queryset):
        self._report(request, actions.activate_connections(queryset, request.user), "activated")

    def _report(self, request, outcomes: list[actions.Outcome], done: str) -> None:
        """One line for the lot (`done`: "deactivated"…; Django says "deleted" itself), one
        per connection the action did not fit, and one per peer that nothing will tell."""
        changed = [outcome for outcome in outcomes if outcome.refused is None]
        for outcome in outcomes:
            if outcome.refused is not None:
                text = str(outcome.refused)
                if not isinstance(outcome.refused, actions.ConnectionGone):
                    text = f"{outcome.connection.name}: {text}"
                self.message_user(request, text, messages.WARNING)
        if done and changed:
            count = len(changed)
            self.message_user(
                request, f"{count} connection{'s' if count != 1 else ''} {done}.", messages.SUCCESS
            )
        queued = sum(1 for o in changed if o.notice.queued is not None and not o.notice.by_pull)
        if queued:
            sides = f"The remote sides of {queued} connections" if queued > 1 else "The remote side"
            self.message_user(request, f"{sides} will be told in a moment.", messages.INFO)
        for outcome in changed:
            name, notice = outcome.connection.name, outcome.notice
            if notice.needs_attention:
                self.message_user(
                    request, f"Peer not told. {name}: {notice.message}", messages.WARNING
                )
            elif notice.by_pull:
                self.message_user(request, f"{name}: {notice.message}", messages.INFO)


@admin.register(ConnectionEvent)
class ConnectionEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "connection_name",
        "kind",
        "from_status",
        "to_status",
        "actor",
        "message",
    ]
    list_filter = ["kind", "to_status", ("connection", admin.EmptyFieldListFilter)]
    search_fields = ["connection_name", "message", "actor_remote", "actor_user__username"]
    date_hierarchy = "created_at"
    list_select_related = ["actor_user"]
    fields = [
        "created_at",
        "connection",
        "connection_name",
        "kind",
        "from_status",
        "to_status",
        "actor",
        "message",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PeerNotification)
class PeerNotificationAdmin(admin.ModelAdmin):
    """The outbox, read-only: what peers have not heard yet, and why."""

    list_display = [
        "created_at",
        "connection_name",
        "status",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["state", "status"]
    search_fields = ["connection_name", "remote_url", "last_error"]
    date_hierarchy = "created_at"
    # The signing key is deliberately absent.
    fields = [
        "connection",
        "connection_name",
        "status",
        "reason",
        "changed_at",
        "remote_url",
        "remote_uid",
        "remote_connection_id",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    readonly_fields = fields
    actions = ["retry_now"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("connections.change_connection")

    @admin.action(description="Send selected notifications now", permissions=["retry"])
    def retry_now(self, request, queryset):
        # The worker sends them: this request never waits on a peer.
        pending = list(queryset.unclaimed())
        count = outbox.send_soon(PeerNotification.objects.filter(pk__in=[n.pk for n in pending]))
        # Delivery changes no connection state, so no connection event: the admin's own
        # history records which staff user pushed each row.
        for notification in pending:
            self.log_change(request, notification, "Sent now by staff: queued for the worker.")
        skipped = queryset.count() - count
        self.message_user(
            request,
            f"{count} notification{'s' if count != 1 else ''} will be sent in a moment."
            + (
                f" {skipped} not pending or being sent already: left as they are."
                if skipped
                else ""
            ),
            messages.SUCCESS if count else messages.WARNING,
        )
