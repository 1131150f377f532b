"""General Settings in the operations view: this node's identity and licence."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse

from nodes.client import InvalidURL, normalize_url
from nodes.models import GeneralSettings
from nodes.validators import validate_short_name


class GeneralSettingsForm(forms.ModelForm):
    """The node's identity is what other nodes are given: hold it to the rules the rest of
    the product applies (a URL other nodes can call, a short name the wizard accepts)."""

    class Meta:
        model = GeneralSettings
        fields = ["node_url", "short_name", "public", "license", "evaluation_ends_on"]

    def clean_node_url(self) -> str:
        try:
            return normalize_url(self.cleaned_data["node_url"])
        except InvalidURL as error:
            raise ValidationError(str(error)) from None

    def clean_short_name(self) -> str:
        value = self.cleaned_data["short_name"].strip()
        validate_short_name(value)
        return value


@admin.register(GeneralSettings)
class GeneralSettingsAdmin(admin.ModelAdmin):
    form = GeneralSettingsForm
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
