"""The Accept invitation page's forms: paste a code, then confirm with this side's name."""

from __future__ import annotations

from django import forms

from invitations import code as invitation_code
from invitations.services.accepting import AcceptError, read_invitation_code
from nodes.validators import SHORT_NAME_MAX_LENGTH, validate_short_name


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Invitation code",
        # Generous: a mail client may have wrapped the code over several lines.
        max_length=2 * invitation_code.MAX_LENGTH,
        widget=forms.Textarea(
            attrs={"rows": 5, "class": "code", "spellcheck": "false", "autocomplete": "off"}
        ),
        help_text="Paste the whole code the other side's admin sent you.",
        error_messages={"required": "Paste the invitation code you received from the other admin."},
    )

    invitation: invitation_code.InvitationCode | None = None

    def clean_code(self) -> str:
        text = self.cleaned_data["code"]
        try:
            self.invitation = read_invitation_code(text)
        except AcceptError as error:
            raise forms.ValidationError(error.message, code="invalid_code") from None
        return text


class ConfirmForm(CodeForm):
    local_short_name = forms.CharField(
        label="Local instance short name",
        max_length=SHORT_NAME_MAX_LENGTH,
        # The same rules as the wizard's short names: both sides show this name.
        validators=[validate_short_name],
        help_text="How this instance is named in the connection. Offered by the other admin; "
        "you may change it.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].widget = forms.HiddenInput()
