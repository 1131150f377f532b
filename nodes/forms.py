"""The forms of this node's General Settings: the Xurrent account (the admin and the Xurrent
page) and AI Assist (the admin and the AI Assist page)."""

from __future__ import annotations

from django import forms

from nodes.models import GeneralSettings
from nodes.validators import normalize_newlines


def _header_safe(value: str, what: str) -> str:
    if value and any(ch.isspace() or not ch.isprintable() for ch in value):
        # A token or key travels in a header line: a space or line break inside it is a
        # paste gone wrong, not part of it.
        raise forms.ValidationError(
            f"The {what} has spaces or line breaks inside it: paste just the {what}."
        )
    return value


def _new_secret_field(label: str, help_text: str) -> forms.CharField:
    """A write-only secret: typed into a password field, never rendered back."""
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        max_length=4000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=help_text,
    )


class XurrentAccountForm(forms.ModelForm):
    """Edits the Xurrent account of the General Settings.

    The API token is write-only: the form never holds it, not even as a hidden initial
    value. A new one is typed into a password field; left blank, the token stays as it is.
    """

    new_xurrent_api_token = _new_secret_field(
        "Set a new API token",
        "A personal access token of the Xurrent account. Leave blank to keep the current "
        "token; it is stored encrypted and never shown again.",
    )
    remove_xurrent_api_token = forms.BooleanField(
        label="Remove the API token",
        required=False,
        help_text="This node then stops calling Xurrent until a new token is set.",
    )

    class Meta:
        model = GeneralSettings
        fields = ["xurrent_api_url", "xurrent_account", "xurrent_webhook_key", "basic_team"]
        widgets = {
            "xurrent_webhook_key": forms.Textarea(
                attrs={"rows": 7, "cols": 66, "class": "code", "spellcheck": "false"}
            ),
        }

    def clean_new_xurrent_api_token(self) -> str:
        return _header_safe(self.cleaned_data.get("new_xurrent_api_token", ""), "token")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A form posted without the field (an older page, a script) keeps the team as it
        # is; one posted blank is refused below.
        if "basic_team" in self.fields:
            self.fields["basic_team"].required = False

    def clean_basic_team(self) -> str:
        if self.is_bound and self.add_prefix("basic_team") not in self.data:
            return self.instance.basic_team
        team = " ".join(str(self.cleaned_data.get("basic_team") or "").split())
        if not team:
            raise forms.ValidationError(
                "Xurrent needs a team for each new request: give a team's name or id."
            )
        return team

    def clean_xurrent_webhook_key(self) -> str:
        key = normalize_newlines(self.cleaned_data.get("xurrent_webhook_key", "")).strip()
        return f"{key}\n" if key else ""

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_xurrent_api_token") and cleaned.get("remove_xurrent_api_token"):
            raise forms.ValidationError(
                "Either set a new API token or remove the current one, not both."
            )
        return cleaned

    def save(self, commit: bool = True) -> GeneralSettings:
        if self.cleaned_data.get("new_xurrent_api_token"):
            self.instance.set_xurrent_token(self.cleaned_data["new_xurrent_api_token"])
        elif self.cleaned_data.get("remove_xurrent_api_token"):
            self.instance.set_xurrent_token("")
        return super().save(commit)


class AIAssistForm(forms.ModelForm):
    """Edits AI Assist's endpoint. The key is write-only, like the Xurrent token: never
    in the form, typed into a password field, kept as it is when left blank."""

    new_ai_api_key = _new_secret_field(
        "Set a new AI API key",
        "Sent as a Bearer token to the endpoint. Leave blank to keep the current key; it is "
        "stored encrypted and never shown again. A local model may need none.",
    )
    remove_ai_api_key = forms.BooleanField(label="Remove the AI API key", required=False)

    class Meta:
        model = GeneralSettings
        fields = ["ai_url", "ai_model"]

    def clean_new_ai_api_key(self) -> str:
        return _header_safe(self.cleaned_data.get("new_ai_api_key", ""), "key")

    def clean_ai_model(self) -> str:
        model = self.cleaned_data.get("ai_model", "").strip()
        if model and not model.isprintable():
            raise forms.ValidationError("The model name holds characters that cannot be sent.")
        return model

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_ai_api_key") and cleaned.get("remove_ai_api_key"):
            raise forms.ValidationError("Either set a new AI API key or remove it, not both.")
        if cleaned.get("ai_url") and not cleaned.get("ai_model"):
            self.add_error("ai_model", "Name the model to use at this endpoint.")
        return cleaned

    def save(self, commit: bool = True) -> GeneralSettings:
        if self.cleaned_data.get("new_ai_api_key"):
            self.instance.set_ai_api_key(self.cleaned_data["new_ai_api_key"])
        elif self.cleaned_data.get("remove_ai_api_key"):
            self.instance.set_ai_api_key("")
        return super().save(commit)


class GeneralSettingsForm(XurrentAccountForm, AIAssistForm):
    """The admin's form: the Xurrent account and AI Assist together (clean and save of
    both parents run, each calling the next along the MRO)."""

    class Meta(XurrentAccountForm.Meta):
        fields = [*XurrentAccountForm.Meta.fields, *AIAssistForm.Meta.fields]
