"""General Settings in the operations view: this node's identity and licence."""

from __future__ import annotations

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse

from nodes.models import GeneralSettings


@admin.register(GeneralSettings)
class GeneralSettingsAdmin(admin.ModelAdmin):
    # The URL and short-name rules come with the model fields (nodes.fields).
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
        return redirect(reverse("admin:nodes_generalsettings_change", args=[node.pk]))
