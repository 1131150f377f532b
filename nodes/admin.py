"""General Settings in the operations view: this node's identity, licence, Xurrent account
and AI Assist."""

from __future__ import annotations

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from nodes.forms import GeneralSettingsForm
from nodes.models import GeneralSettings


@admin.register(GeneralSettings)
class GeneralSettingsAdmin(admin.ModelAdmin):
    # The URL and short-name rules come with the model fields (nodes.fields); the token
    # is never a field of the form: only "set a new token" and whether one is set.
    form = GeneralSettingsForm
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "uid",
                    "node_url",
                    "short_name",
                    "platform",
                    "public",
                    "license",
                    "evaluation_ends_on",
                ]
            },
        ),
        (
            "Xurrent account",
            {
                "fields": [
                    "xurrent_api_url",
                    "xurrent_account",
                    "xurrent_token_state",
                    "new_xurrent_api_token",
                    "remove_xurrent_api_token",
                    "xurrent_webhook_key",
                    "basic_team",
                    "check_xurrent_link",
                ]
            },
        ),
        (
            "AI Assist (sync rules)",
            {
                "fields": [
                    "ai_url",
                    "ai_model",
                    "ai_key_state",
                    "new_ai_api_key",
                    "remove_ai_api_key",
                ]
            },
        ),
    ]
    readonly_fields = [
        "uid",
        "platform",
        "xurrent_token_state",
        "check_xurrent_link",
        "ai_key_state",
    ]

    @admin.display(description="API token")
    def xurrent_token_state(self, obj: GeneralSettings) -> str:
        return "Set (hidden)" if obj.has_xurrent_token else "Not set"

    @admin.display(description="AI API key")
    def ai_key_state(self, obj: GeneralSettings) -> str:
        return "Set (hidden)" if obj.has_ai_api_key else "Not set"

    @admin.display(description="Check Xurrent")
    def check_xurrent_link(self, obj: GeneralSettings) -> str:
        # The page belongs to the xurrent app, which nodes does not import: found by name.
        try:
            url = reverse("xurrent:settings")
        except NoReverseMatch:
            return "—"
        return format_html('<a href="{}">Check whether the Xurrent account answers</a>', url)

    def has_add_permission(self, request):
        return not GeneralSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # One row per node: the list would only ever show it, so go straight to it.
        node = GeneralSettings.load()
        return redirect(reverse("admin:nodes_generalsettings_change", args=[node.pk]))
