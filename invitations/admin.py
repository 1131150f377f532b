from django.contrib import admin

from invitations.models import Invitation


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    # The token hash is deliberately absent: it is a credential's fingerprint.
    list_display = ["connection", "state", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["accepted_at", "revoked_at"]
    list_select_related = ["connection"]
    fields = [
        "connection",
        "destination_uid",
        "created_at",
        "created_by",
        "expires_at",
        "shown_at",
        "revoked_at",
        "accepted_at",
        "acceptor_uid",
        "acceptor_url",
        "acceptor_short_name",
        "acceptor_connection_id",
        "acceptor_platform",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
