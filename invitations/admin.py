from django.contrib import admin, messages
from django.utils import timezone

from connections.admin import ReadOnlyInline, extend_connection_admin
from invitations.models import Invitation
from invitations.services import issuing

# The token hash is deliberately absent everywhere here: it is a credential's fingerprint.
INVITATION_FIELDS = [
    "connection",
    "state",
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


class InvitationInline(ReadOnlyInline):
    """Shown on a connection's admin page (ConnectionAdmin picks it up)."""

    model = Invitation
    fields = [
        "state",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "accepted_at",
        "acceptor_short_name",
        "acceptor_url",
    ]
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("valid", "Valid"),
            ("expired", "Expired"),
            ("accepted", "Accepted"),
            ("revoked", "Revoked"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        match self.value():
            case "valid":
                return queryset.valid()
            case "expired":
                return queryset.filter(
                    accepted_at__isnull=True, revoked_at__isnull=True, expires_at__lte=now
                )
            case "accepted":
                return queryset.filter(accepted_at__isnull=False)
            case "revoked":
                return queryset.filter(accepted_at__isnull=True, revoked_at__isnull=False)
        return queryset


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["connection", "state", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = [StateFilter, "created_at"]
    list_select_related = ["connection"]
    search_fields = ["connection__name", "acceptor_short_name", "acceptor_url"]
    date_hierarchy = "created_at"
    fields = INVITATION_FIELDS
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("connections.change_connection")

    @admin.action(description="Revoke selected invitations", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        # A connection has at most one valid invitation (issuing a new one revokes the
        # old), so revoking per connection revokes exactly the selected valid ones.
        revoked = 0
        selected = queryset.valid().select_related("connection")
        for connection in {invitation.connection for invitation in selected}:
            revoked += issuing.revoke_pending_invitations(connection, request.user)
        self.message_user(
            request,
            f"{revoked} invitation{'s' if revoked != 1 else ''} revoked.",
            messages.SUCCESS if revoked else messages.WARNING,
        )


@admin.action(description="Revoke pending invitations", permissions=["change"])
def revoke_pending_invitations(modeladmin, request, queryset):
    revoked = sum(
        issuing.revoke_pending_invitations(connection, request.user) for connection in queryset
    )
    modeladmin.message_user(
        request,
        f"{revoked} pending invitation{'s' if revoked != 1 else ''} revoked.",
        messages.SUCCESS if revoked else messages.WARNING,
    )


extend_connection_admin(inlines=[InvitationInline], actions=[revoke_pending_invitations])
