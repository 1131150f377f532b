"""Forms of the sync rules page: the two scripts, and the samples a test run uses."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from nodes.validators import normalize_newlines
from sync.defaults import SAMPLE_REPLICA, SAMPLE_REQUEST, as_json
from sync.sandbox import SCRIPT_MAX_LENGTH, Problem, check_script
from sync.services.assist import WORDS_MAX_LENGTH
from sync.services.transfer import MAX_FILE_BYTES

SAMPLE_MAX_LENGTH = 64 * 1024
# An empty box is more likely a slip than a choice: a script that does nothing says so.
EMPTY_SCRIPT = "Write a script here; to do nothing, write a comment such as # nothing to do."


def _code_area(rows: int) -> forms.Textarea:
    return forms.Textarea(
        attrs={
            "class": "code",
            "rows": rows,
            "spellcheck": "false",
            "autocapitalize": "off",
            "autocomplete": "off",
            "wrap": "off",
        }
    )


def _script_field(label: str, help_text: str, direction: str) -> forms.CharField:
    # strip=False: leading indentation and trailing lines are part of a script.
    widget = _code_area(18)
    # The page's editor (static/js/editor.bundle.js) takes over these; the textarea stays
    # the form field, so the page works the same without JavaScript.
    widget.attrs.update({"data-editor": "python", "data-direction": direction})
    return forms.CharField(
        label=label,
        error_messages={"required": EMPTY_SCRIPT},
        strip=False,
        max_length=SCRIPT_MAX_LENGTH,
        widget=widget,
        help_text=help_text,
    )


class RulesForm(forms.Form):
    outgoing = _script_field(
        "Outgoing sync",
        "Runs when a local request changes: copy from entity (the local request) "
        "to replica (what the other side receives).",
        "outgoing",
    )
    incoming = _script_field(
        "Incoming sync",
        "Runs when a replica arrives: apply it to entity (the local request); "
        "first_sync is True when the request is created here.",
        "incoming",
    )
    note = forms.CharField(
        label="What changed (optional)",
        required=False,
        max_length=200,
        help_text="Shown in the version history.",
    )
    # The version the admin started editing from (0: the defaults), to catch a save by
    # someone else in the meantime.
    based_on = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)
    # Set when the text in the boxes came from an AI Assist draft: the admin's words, kept
    # with the version that is saved.
    assist_prompt = forms.CharField(
        required=False, max_length=WORDS_MAX_LENGTH, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Each script's compile problems, with their lines, for the page to point at.
        self.problems: dict[str, list[Problem]] = {}

    def _clean_script(self, direction: str) -> str:
        text = normalize_newlines(self.cleaned_data[direction])
        problems = check_script(text, direction)
        if problems:
            self.problems[direction] = problems
            raise forms.ValidationError([str(p) for p in problems], code="compile")
        return text

    def clean_outgoing(self) -> str:
        return self._clean_script("outgoing")

    def clean_incoming(self) -> str:
        return self._clean_script("incoming")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
        json.dumps(value)  # deep nesting that loads may still not dump back
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
            code="json",
        ) from None
    except (RecursionError, ValueError):
        raise forms.ValidationError(f"{what} is nested too deeply.", code="json") from None
    if not isinstance(value, dict):
        raise forms.ValidationError(f"{what} must be a JSON object ({{ … }}).", code="json")
    return value


class SamplesForm(forms.Form):
    sample_request = forms.CharField(
        label="Sample local request (Xurrent)",
        strip=False,
        max_length=SAMPLE_MAX_LENGTH,
        widget=_code_area(16),
        help_text="A request as Xurrent's API returns it, with its notes. The outgoing "
        "script runs on it; the incoming script is applied to it.",
    )
    sample_replica = forms.CharField(
        label="Sample replica from the other side",
        strip=False,
        max_length=SAMPLE_MAX_LENGTH,
        widget=_code_area(16),
        help_text="What the other side's outgoing script might send.",
    )
    first_sync = forms.BooleanField(
        label="First sync: the request does not exist here yet",
        required=False,
        help_text="The incoming script then starts from an empty request.",
    )

    @staticmethod
    def defaults() -> dict[str, Any]:
        return {
            "sample_request": as_json(SAMPLE_REQUEST),
            "sample_replica": as_json(SAMPLE_REPLICA),
            "first_sync": False,
        }

    def clean_sample_request(self) -> dict[str, Any]:
        return _json_object(self.cleaned_data["sample_request"], "The sample request")

    def clean_sample_replica(self) -> dict[str, Any]:
        return _json_object(self.cleaned_data["sample_replica"], "The sample replica")


# --- the Sync tab ---------------------------------------------------------------------------


class TriggerForm(forms.Form):
    query = forms.CharField(
        label="Filter query",
        max_length=1000,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
        help_text="In the syntax of Xurrent's request list, e.g. category=incident&team=12 or "
        "status=!completed. It is checked with this node's Xurrent account before it is saved.",
    )
    note = forms.CharField(
        label="Note (optional)", max_length=200, required=False, help_text="What it is for."
    )


class RequestIdField(forms.Field):
    """A Xurrent request id, typed as 12 or #12."""

    widget = forms.TextInput
    default_error_messages = {"invalid": "Enter a request id: a whole number such as 12."}

    def to_python(self, value: Any) -> int | None:
        text = str(value or "").strip().lstrip("#").strip()
        if not text:
            return None
        if len(text) > 18 or not text.isdigit() or int(text) < 1:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return int(text)


class RequestIdForm(forms.Form):
    request_id = RequestIdField(
        label="Request id",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


class TestRequestForm(forms.Form):
    """The rules page's test run on a real request of this node's account."""

    test_request_id = RequestIdField(
        label="Or on request",
        required=False,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "placeholder": "id"}
        ),
        help_text="A request id of this node's Xurrent account: the outgoing script runs on "
        "that request as Xurrent has it now, and the sample replica is applied to it.",
    )


# --- AI Assist and rules files -------------------------------------------------------------


class AssistForm(forms.Form):
    """What an admin asks AI Assist for (part of the rules form: it sends the scripts and
    samples along)."""

    assist_words = forms.CharField(
        label="Describe what to sync",
        max_length=WORDS_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Describe in a few words what the scripts should do."},
        help_text="For example: send the summary, the status and public comments; map the "
        "other side's priorities High and Highest to the impact high.",
    )
    assist_target = forms.ChoiceField(
        label="Draft",
        choices=[
            ("both", "both scripts"),
            ("outgoing", "the outgoing script"),
            ("incoming", "the incoming script"),
        ],
        initial="both",
        widget=forms.RadioSelect,
    )
    assist_send_samples = forms.BooleanField(
        label="Send the test run samples to the model",
        required=False,
        help_text="They may hold real request data. Without them the model sees only the "
        "scripts and your words; the draft is test-run on them here either way.",
    )

    @property
    def directions(self) -> tuple[str, ...]:
        target = self.cleaned_data["assist_target"]
        return ("outgoing", "incoming") if target == "both" else (target,)


class ImportRulesForm(forms.Form):
    rules_file = forms.FileField(
        label="Rules file",
        help_text="A .json file exported from a connection's sync rules page or with "
        "`manage.py export_rules`.",
    )

    def clean_rules_file(self) -> bytes:
        upload = self.cleaned_data["rules_file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_FILE_BYTES // 1024} KB: it is not a rules file."
            )
        return upload.read()


class ConfirmImportForm(forms.Form):
    """The checked file's text, sent again to import it after the preview."""

    content = forms.CharField(strip=False, max_length=MAX_FILE_BYTES, widget=forms.HiddenInput)
    based_on = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
