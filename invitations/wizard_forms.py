"""Forms of the initiate wizard, also used by the `initiate_connection` command.

They are the checks both share (invitations/services/initiating.py builds them). No form
calls another node by itself: the destination form asks the `discover` callable it is
given, which the wizard answers from its storage after the first time, because formtools
validates every step again on each later step and at the end (DESIGN.md §10).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

from django import forms
from django.core.exceptions import ValidationError

from connections.models import Connection
from nodes.discovery import Destination, DestinationError
from nodes.models import Mode
from nodes.validators import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    SHORT_NAME_MAX_LENGTH,
    SHORT_NAME_PUNCTUATION,
    InvalidURL,
    normalize_newlines,
    normalize_url,
    validate_short_name,
)

MODE_DESCRIPTIONS = {
    Mode.BASIC: (
        "Ready-made sync rules for the usual request fields. Only requests are synced, "
        "and the rules cannot be edited. Good for simple cases."
    ),
    Mode.SCRIPT: (
        "Each side writes its own sync rules in Python: an outgoing script that decides "
        "what this side sends and an incoming one that decides how it applies what it "
        "receives. Good for simple to advanced cases."
    ),
}

# The code of an error that comes from asking the destination, not from what was typed.
UNUSABLE = "unusable_destination"


def clean_short_name(value: str) -> str:
    """A prefill suggestion that passes the short-name rules ("" when nothing is left)."""
    kept = "".join(ch for ch in value if ch.isalnum() or ch in SHORT_NAME_PUNCTUATION)
    return kept.strip()[:SHORT_NAME_MAX_LENGTH].strip()


class ShortNameField(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(
            max_length=SHORT_NAME_MAX_LENGTH,
            validators=[validate_short_name],
            error_messages={"required": "Enter a short name (1 to 40 characters)."},
            **kwargs,
        )


class MultilineField(forms.CharField):
    """Counts a line break as one character, as the browser's maxlength does."""

    def to_python(self, value):
        value = super().to_python(value)
        return normalize_newlines(value)


class DestinationForm(forms.Form):
    destination_url = forms.CharField(
        label="Destination instance URL",
        required=False,
        max_length=500,
        help_text=(
            "The address of the instance you want to connect with: the Exalate URL shown in "
            "the General Settings of its Exalate admin, e.g. https://desk.example.com."
        ),
        widget=forms.TextInput(
            attrs={
                "inputmode": "url",
                "autocomplete": "url",
                "spellcheck": "false",
                "placeholder": "https://",
            }
        ),
    )
    no_url = forms.BooleanField(
        label="I don't have a URL",
        required=False,
        help_text=(
            "For a destination this node cannot reach, for example one in a private network. "
            "Its admin accepts the invitation, and this node learns its address then."
        ),
    )

    def __init__(self, *args, discover: Callable[[str], Destination] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.discover = discover

    def clean(self):
        cleaned = super().clean()
        if "destination_url" not in self.errors:
            self._clean_choice(cleaned)
        if self.discover is not None and not self.errors:
            try:
                cleaned["destination"] = self.discover(cleaned["destination_url"])
            except DestinationError as exc:
                self.add_error("destination_url", ValidationError(exc.message, code=UNUSABLE))
        return cleaned

    def _clean_choice(self, cleaned) -> None:
        """A URL (normalised, "" for none) or the checkbox, exactly one of them."""
        url = (cleaned.get("destination_url") or "").strip()
        no_url = cleaned.get("no_url", False)
        if url and no_url:
            self.add_error(
                "destination_url",
                "Enter a URL or tick \u201cI don't have a URL\u201d, not both.",
            )
        elif not url and not no_url:
            self.add_error(
                "destination_url",
                "Enter the destination instance URL, or tick \u201cI don't have a URL\u201d.",
            )
        else:
            try:
                cleaned["destination_url"] = normalize_url(url) if url else ""
            except InvalidURL as exc:
                self.add_error("destination_url", str(exc))


class ModeField(forms.ChoiceField):
    def validate(self, value):
        try:
            super().validate(value)
        except ValidationError as error:
            if error.code != "invalid_choice" or value not in Mode.values:
                raise
            # Most often a mode chosen earlier for a destination since changed.
            raise ValidationError(
                f"{Mode(value).label} mode is not offered for this connection: choose one "
                "of the modes listed.",
                code="invalid_choice",
            ) from None


class ModeForm(forms.Form):
    mode = ModeField(
        label="Configuration mode",
        widget=forms.RadioSelect,
        choices=Mode.choices,
        error_messages={
            "required": "Choose a configuration mode.",
            "invalid_choice": "That mode is not offered for this connection: choose one listed.",
        },
    )

    def __init__(self, *args, modes: Sequence[str] = tuple(Mode.values), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["mode"].choices = [(m.value, m.label) for m in Mode if m.value in modes]
        if len(modes) == 1:
            self.fields["mode"].initial = modes[0]

    def mode_choices(self):
        """The radio buttons with their description, for the template."""
        field = self["mode"]
        return [(radio, MODE_DESCRIPTIONS[Mode(radio.data["value"])]) for radio in field]


class DetailsForm(forms.Form):
    local_short_name = ShortNameField(
        label="Local instance short name",
        help_text="A short name for this instance; both sides show it in the connection.",
    )
    remote_short_name = ShortNameField(
        label="Remote instance short name",
        help_text="A short name for the destination instance.",
    )
    name = forms.CharField(
        label="Connection name",
        max_length=NAME_MAX_LENGTH,
        help_text="Unique on this node, whatever the case of its letters.",
        error_messages={"required": "Enter a name for the connection."},
    )
    description = MultilineField(
        label="Description",
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Optional: what this connection is for (up to 1,000 characters).",
    )
    # The destination this page was shown for. Two tabs share one wizard, so a page left
    # open in another tab must not finish a connection to a destination it never showed.
    destination_check = forms.CharField(required=False, widget=forms.HiddenInput)

    STALE = (
        "The destination was changed in another tab or window while this page was open. "
        "Check the destination shown above, then submit this step again."
    )

    def __init__(self, *args, expected_destination: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stale = False
        if self.is_bound and expected_destination is not None:
            key = self.add_prefix("destination_check")
            sent = self.data.get(key)
            if sent != expected_destination:
                # A page sent for another destination is stale. Data without the check
                # (what the wizard kept of this step) was not sent from a page at all.
                self.stale = bool(sent)
                # Shown (again) with the current destination, so the next submit passes.
                self.data = self.data.copy()
                self.data[key] = expected_destination

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if any(unicodedata.category(ch).startswith("C") for ch in name):
            raise ValidationError("The connection name cannot contain control characters.")
        if Connection.objects.with_name(name).exists():
            raise ValidationError(
                f"A connection named \u201c{name}\u201d already exists on this node. "
                "Choose another name."
            )
        return name

    def clean(self):
        cleaned = super().clean()
        if self.stale:
            raise ValidationError(self.STALE, code="stale")
        return cleaned


def suggest_connection_name(local: str, remote: str) -> str:
    """ "local to remote", made unique on this node with a number when needed."""
    if not local or not remote:
        return ""
    base = f"{local} to {remote}"[:NAME_MAX_LENGTH]
    name, number = base, 2
    while Connection.objects.with_name(name).exists() and number < 100:
        suffix = f" {number}"
        name = base[: NAME_MAX_LENGTH - len(suffix)] + suffix
        number += 1
    return name
