"""Webhook hints in the operations view: what Xurrent said changed, read-only."""

from django.contrib import admin

from xurrent.models import WebhookHint


@admin.register(WebhookHint)
class WebhookHintAdmin(admin.ModelAdmin):
    list_display = ["received_at", "event", "object_id", "account", "processed"]
    list_filter = ["processed", "event"]
    search_fields = ["=object_id"]
    ordering = ["-received_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
