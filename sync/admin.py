"""Sync rule versions on a connection's admin page (read-only)."""

from connections.admin import ReadOnlyInline, extend_connection_admin
from sync import operations_admin  # noqa: F401 - registers the sync's operations view
from sync.models import SyncRuleVersion


class RuleVersionInline(ReadOnlyInline):
    model = SyncRuleVersion
    fields = ["number", "created_at", "created_by", "note", "outgoing", "incoming"]
    readonly_fields = fields
    ordering = ["-number"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")


extend_connection_admin(inlines=[RuleVersionInline])
