from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse

from connections.models import Connection, ConnectionEvent, GeneralSettings


@admin.register(GeneralSettings)
class GeneralSettingsAdmin(admin.ModelAdmin):
    fields = [
        "uid",
        "node_url",
        "short_name",
        "platform",
        "public",
        "license",
        "evaluation_ends_on",
    ]
    readonly_fields = ["uid", "platform"]

    def has_add_permission(self, request):
        return not GeneralSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # One row per node: the list would only ever show it, so go straight to it.
        node = GeneralSettings.load()
        return redirect(reverse("admin:connections_generalsettings_change", args=[node.pk]))


class EventInline(admin.TabularInline):
    model = ConnectionEvent
    fields = [
        "created_at",
        "kind",
        "from_status",
        "to_status",
        "message",
        "actor_user",
        "actor_remote",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "status",
        "mode",
        "role",
        "local_short_name",
        "remote_short_name",
        "remote_url",
        "created_at",
    ]
    list_filter = ["status", "mode", "role"]
    search_fields = ["name", "local_short_name", "remote_short_name", "remote_url"]
    readonly_fields = [
        "id",
        "mode",
        "role",
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
    fields = [
        "id",
        "name",
        "description",
        "mode",
        "role",
        "status",
        "status_reason",
        "local_short_name",
        "remote_short_name",
        "remote_url",
        "remote_uid",
        "remote_connection_id",
        "remote_platform",
        "remote_status",
        "remote_status_at",
        "created_at",
        "activated_at",
        "created_by",
    ]
    inlines = [EventInline]
    list_select_related = ["created_by"]

    def has_add_permission(self, request):
        # Connections come from the initiate/accept handshake, never from a blank form.
        return False


@admin.register(ConnectionEvent)
class ConnectionEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "connection_name", "kind", "from_status", "to_status", "message"]
    list_filter = ["kind", "to_status"]
    search_fields = ["connection_name", "message"]
    list_select_related = ["actor_user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
