"""The wizard's forms on their own: what each step accepts and refuses."""

import pytest

from connections.models import Connection
from invitations.wizard_forms import (
    UNUSABLE,
    DestinationForm,
    DetailsForm,
    ModeForm,
    clean_short_name,
    suggest_connection_name,
)
from nodes.discovery import Destination, DestinationError


def details(**overrides) -> dict:
    return {
        "local_short_name": "acme",
        "remote_short_name": "globex",
        "name": "acme to globex",
        "description": "",
        **overrides,
    }


def existing_connection(name: str) -> Connection:
    return Connection.objects.create(
        name=name, mode="script", role="source", local_short_name="a", remote_short_name="b"
    )


# --- destination --------------------------------------------------------------------------


def test_destination_form_normalises_the_url():
    form = DestinationForm(data={"destination_url": " HTTPS://Globex.Example:8443/ "})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["destination_url"] == "https://globex.example:8443"


def test_destination_form_accepts_i_dont_have_a_url_alone():
    form = DestinationForm(data={"no_url": "on"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["destination_url"] == ""


def test_destination_form_needs_a_url_or_the_checkbox():
    form = DestinationForm(data={})
    assert not form.is_valid()
    assert "I don't have a URL" in form.errors["destination_url"][0]


def test_destination_form_refuses_a_url_together_with_the_checkbox():
    form = DestinationForm(data={"destination_url": "https://globex.example", "no_url": "on"})
    assert not form.is_valid()
    assert "not both" in form.errors["destination_url"][0]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("globex.example", "http:// or https://"),
        ("ftp://globex.example", "http:// or https://"),
        ("https://user:pw@globex.example", "user name or password"),
        ("https://globex.example/#top", "without ? or # parts"),
        ("https://" + "a" * 500 + ".example", "at most 500 characters"),
    ],
)
def test_destination_form_refuses_a_url_that_is_not_an_http_base_url(url, message):
    form = DestinationForm(data={"destination_url": url})
    assert not form.is_valid()
    assert message in form.errors["destination_url"][0]


def test_destination_form_asks_its_discover_with_the_normalised_url_and_keeps_the_answer():
    asked = []

    def discover(url):
        asked.append(url)
        return Destination(url=url, short_name="globex")

    form = DestinationForm(data={"destination_url": "HTTPS://Globex.Example/"}, discover=discover)
    assert form.is_valid(), form.errors
    assert asked == ["https://globex.example"]
    assert form.cleaned_data["destination"].short_name == "globex"


def test_destination_form_asks_nobody_about_a_url_it_refuses():
    def discover(url):
        raise AssertionError("asked")

    form = DestinationForm(data={"destination_url": "ftp://globex.example"}, discover=discover)
    assert not form.is_valid()


def test_destination_form_shows_why_the_destination_cannot_be_used_on_the_url():
    def discover(url):
        raise DestinationError("unreachable", "Could not connect.")

    form = DestinationForm(data={"destination_url": "https://globex.example"}, discover=discover)
    assert not form.is_valid()
    assert form.errors["destination_url"] == ["Could not connect."]
    assert form.errors.as_data()["destination_url"][0].code == UNUSABLE


# --- mode ---------------------------------------------------------------------------------


def test_mode_form_offers_only_the_modes_it_is_given():
    form = ModeForm(modes=["basic"])
    assert [value for value, _ in form.fields["mode"].choices] == ["basic"]
    assert form.fields["mode"].initial == "basic"


def test_mode_form_refuses_a_mode_that_is_not_offered():
    form = ModeForm(data={"mode": "script"}, modes=["basic"])
    assert not form.is_valid()
    assert "not offered" in form.errors["mode"][0]


def test_mode_form_names_a_known_mode_that_is_not_offered():
    form = ModeForm(data={"mode": "script"}, modes=["basic"])
    assert form.errors["mode"] == [
        "Script mode is not offered for this connection: choose one of the modes listed."
    ]
    unknown = ModeForm(data={"mode": "visual"}, modes=["basic"])
    assert "That mode is not offered" in unknown.errors["mode"][0]


def test_mode_form_needs_a_choice():
    form = ModeForm(data={}, modes=["basic", "script"])
    assert not form.is_valid()
    assert form.errors["mode"] == ["Choose a configuration mode."]


def test_mode_form_describes_each_offered_mode():
    described = dict(
        (radio.data["value"], text)
        for radio, text in ModeForm(modes=["basic", "script"]).mode_choices()
    )
    assert "cannot be edited" in described["basic"]
    assert "Python" in described["script"]


# --- details ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_details_form_accepts_short_names_of_letters_digits_space_dot_dash_underscore():
    form = DetailsForm(
        data=details(local_short_name="Acme HQ.eu-1_a", remote_short_name="Zürich 2")
    )
    assert form.is_valid(), form.errors


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("local_short_name", "", "Enter a short name"),
        ("local_short_name", "   ", "Enter a short name"),
        ("local_short_name", "a" * 41, "at most 40 characters"),
        ("local_short_name", "acme/eu", "Use only letters, digits"),
        ("remote_short_name", "globex!", "Use only letters, digits"),
        ("remote_short_name", "<b>", "Use only letters, digits"),
        ("name", "", "Enter a name for the connection."),
        ("name", "n" * 101, "at most 100 characters"),
        ("name", "tab\tinside", "control characters"),
        ("description", "d" * 1001, "at most 1000 characters"),
    ],
)
def test_details_form_refuses_bad_values_on_their_field(field, value, message):
    form = DetailsForm(data=details(**{field: value}))
    assert not form.is_valid()
    assert message in " ".join(form.errors[field])


@pytest.mark.django_db
def test_details_form_accepts_exactly_the_longest_values():
    form = DetailsForm(
        data=details(local_short_name="a" * 40, name="n" * 100, description="d" * 1000)
    )
    assert form.is_valid(), form.errors


@pytest.mark.django_db
def test_details_form_counts_a_line_break_in_the_description_as_one_character():
    text = ("x" * 99 + "\r\n") * 10  # 1,000 characters as the browser counts them
    form = DetailsForm(data=details(description=text))
    assert form.is_valid(), form.errors
    assert "\r" not in form.cleaned_data["description"]


@pytest.mark.django_db
def test_details_form_refuses_a_name_taken_in_any_case():
    existing_connection("Acme to Globex")
    form = DetailsForm(data=details(name="  ACME TO GLOBEX "))
    assert not form.is_valid()
    assert "already exists" in form.errors["name"][0]


@pytest.mark.django_db
def test_details_form_refuses_a_page_left_open_for_another_destination():
    form = DetailsForm(
        data=details(destination_check="https://old.example"),
        expected_destination="https://new.example",
    )
    assert not form.is_valid()
    assert "another tab" in form.non_field_errors()[0]
    # Shown again for the current destination, so submitting it again goes through.
    again = DetailsForm(data=form.data, expected_destination="https://new.example")
    assert again.is_valid(), again.errors


@pytest.mark.django_db
def test_details_form_without_a_check_takes_the_current_destination():
    # What the wizard kept of this step carries no check: it was not sent from a page.
    form = DetailsForm(data=details(), expected_destination="https://new.example")
    assert form.is_valid(), form.errors
    assert form["destination_check"].value() == "https://new.example"


def test_clean_short_name_makes_a_prefill_that_passes_the_rules():
    assert clean_short_name("globex@corp (EU)") == "globexcorp EU"
    assert clean_short_name("x" * 60) == "x" * 40
    assert clean_short_name("@@@") == ""


@pytest.mark.django_db
def test_suggested_name_joins_the_short_names_and_avoids_taken_ones():
    assert suggest_connection_name("acme", "globex") == "acme to globex"
    existing_connection("acme to globex")
    existing_connection("Acme To Globex 2")
    assert suggest_connection_name("acme", "globex") == "acme to globex 3"
    assert suggest_connection_name("acme", "") == ""
