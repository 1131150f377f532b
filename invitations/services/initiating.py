"""Initiating a connection (source side): the checks the wizard and the command share.

The checks are the wizard's three forms, each built with what it needs by `form_kwargs()`,
so the initiate wizard and the `initiate_connection` command refuse the same input with the
same words. The wizard runs them one step at a time (formtools keeps what was typed, and
the wizard asks the destination once); the command runs them all at once with
`initiate()`. Both then create the connection with `create()`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError

from invitations.services.issuing import initiate_connection
from invitations.wizard_forms import (
    DestinationForm,
    DetailsForm,
    ModeForm,
    clean_short_name,
    suggest_connection_name,
)
from nodes.discovery import Destination, discover_destination, missing_mode_reasons, offered_modes
from nodes.models import GeneralSettings

STEP_FORMS: dict[str, type[forms.Form]] = {
    "destination": DestinationForm,
    "mode": ModeForm,
    "details": DetailsForm,
}

NOT_PUBLIC = (
    "This instance is not public (see its General Settings), so it cannot initiate a "
    "connection: the other side could never reach it to accept. Ask the other side's admin "
    "to initiate and accept their invitation here, or make this instance public."
)
NAME_TAKEN = "A connection with this name was just created. Choose another name."


class InitiateRefused(Exception):
    """The input cannot initiate a connection.

    `step` is the wizard step that refuses it ("node" when this node cannot initiate at
    all); `errors` maps each field of that step's form (NON_FIELD_ERRORS for the form
    itself) to its ValidationErrors. `modes` are the modes offered at that point, and
    `notes` say why the others are not.
    """

    def __init__(
        self,
        step: str,
        errors: dict[str, list[ValidationError]],
        *,
        modes: Sequence[str] = (),
        notes: Sequence[str] = (),
    ):
        super().__init__(f"{step}: {errors}")
        self.step = step
        self.errors = errors
        self.modes = list(modes)
        self.notes = list(notes)


def form_kwargs(
    step: str,
    node: GeneralSettings,
    destination: Destination | None,
    *,
    discover: Callable[[str], Destination] | None = None,
) -> dict[str, Any]:
    """What the form of `step` needs besides its data, for the destination known so far.

    `discover` answers the destination step; by default it asks the destination.
    """
    if step == "destination":
        return {"discover": discover or partial(discover_destination, node=node)}
    if step == "mode":
        return {"modes": offered_modes(node, destination)}
    if step == "details":
        return {"expected_destination": destination.key if destination else None}
    raise ValueError(f"The initiate wizard has no step {step!r}.")


def suggested_short_names(
    node: GeneralSettings, destination: Destination | None
) -> tuple[str, str]:
    """(local, remote): what each side calls itself, made to pass the short-name rules."""
    remote = clean_short_name(destination.short_name) if destination else ""
    return clean_short_name(node.short_name), remote


def details_initial(node: GeneralSettings, destination: Destination | None) -> dict[str, str]:
    """What the details step suggests: both short names and a name made of them."""
    local, remote = suggested_short_names(node, destination)
    return {
        "local_short_name": local,
        "remote_short_name": remote,
        "name": suggest_connection_name(local, remote),
        "destination_check": destination.key if destination else "",
    }


def initiate(
    node: GeneralSettings,
    *,
    destination_url: str = "",
    no_url: bool = False,
    mode: str = "",
    local_short_name: str | None = None,
    remote_short_name: str | None = None,
    name: str = "",
    description: str = "",
    user=None,
):
    """Every check of the wizard, in its order, then `create()`: all in one call.

    A short name left out (None) takes the wizard's suggestion. Returns
    `(connection, invitation, code)`; raises InitiateRefused at the first step refused.
    """
    if not node.public:
        raise InitiateRefused("node", {NON_FIELD_ERRORS: [ValidationError(NOT_PUBLIC)]})
    where = _checked("destination", node, None, destination_url=destination_url, no_url=no_url)
    destination = where.cleaned_data["destination"]
    chosen = _checked("mode", node, destination, mode=mode)
    local, remote = suggested_short_names(node, destination)
    details = _checked(
        "details",
        node,
        destination,
        local_short_name=local if local_short_name is None else local_short_name,
        remote_short_name=remote if remote_short_name is None else remote_short_name,
        name=name,
        description=description,
    )
    return create(
        destination, mode=chosen.cleaned_data["mode"], details=details.cleaned_data, user=user
    )


def create(destination: Destination, *, mode: str, details: dict[str, Any], user=None):
    """Create the pending connection and its first invitation from checked input.

    Returns `(connection, invitation, code)`. Raises InitiateRefused on the details step
    when the name was taken since it was checked.
    """
    try:
        return initiate_connection(
            name=details["name"],
            mode=mode,
            local_short_name=details["local_short_name"],
            remote_short_name=details["remote_short_name"],
            description=details["description"],
            remote_url=destination.url,
            remote_uid=destination.uid,
            remote_platform=destination.platform,
            user=user,
        )
    except IntegrityError:
        # Another admin took the same name between the check and the insert.
        error = ValidationError(NAME_TAKEN, code="name_taken")
        raise InitiateRefused("details", {"name": [error]}) from None


def _checked(step: str, node, destination: Destination | None, **data) -> forms.Form:
    form = STEP_FORMS[step](data=data, **form_kwargs(step, node, destination))
    if not form.is_valid():
        raise InitiateRefused(
            step,
            form.errors.as_data(),
            modes=offered_modes(node, destination),
            notes=missing_mode_reasons(node, destination),
        )
    return form
