"""Initiate connection: destination → mode → connection information → invitation code.

The destination is asked once, when its step is submitted, and the answer is kept in
the wizard's storage (`extra_data`): formtools validates every step again on later steps
and before `done()`, so a network call inside a form would run again and again.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.db import IntegrityError
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from formtools.wizard.views import SessionWizardView

from invitations.services.issuing import initiate_connection
from invitations.views.code import remember_code
from invitations.wizard_forms import (
    DestinationForm,
    DetailsForm,
    ModeForm,
    clean_short_name,
    suggest_connection_name,
)
from nodes.discovery import (
    Destination,
    DestinationError,
    discover_destination,
    missing_mode_reasons,
    offered_modes,
)
from nodes.models import GeneralSettings, Mode

TOTAL_STEPS = 4  # the three forms, then the invitation code page
STEP_TITLES = {
    "destination": "Destination",
    "mode": "Configuration mode",
    "details": "Connection information",
}
DISCOVERY_KEY = "destination"


class _StayOnStep(Exception):
    """Raised from process_step to show the current step again with an error."""

    def __init__(self, form):
        self.form = form


class _NameTaken(Exception):
    pass


def render_not_public(request, node: GeneralSettings):
    return render(request, "invitations/initiate/not_public.html", {"node": node})


# Listed outermost first: anonymous visitors go to the login page, others without the
# permission get the 403 page.
@method_decorator(login_required, name="dispatch")
@method_decorator(
    permission_required("connections.add_connection", raise_exception=True), name="dispatch"
)
@method_decorator(never_cache, name="dispatch")
class InitiateConnectionWizard(SessionWizardView):
    form_list = [
        ("destination", DestinationForm),
        ("mode", ModeForm),
        ("details", DetailsForm),
    ]

    def dispatch(self, request, *args, **kwargs):
        self.node = GeneralSettings.load()
        if not self.node.public:
            return render_not_public(request, self.node)
        return super().dispatch(request, *args, **kwargs)

    def get_template_names(self) -> list[str]:
        return [f"invitations/initiate/{self.steps.current}.html"]

    # --- what was learnt about the destination ----------------------------------------

    @property
    def destination(self) -> Destination | None:
        return Destination.from_dict(self.storage.extra_data.get(DISCOVERY_KEY))

    def _remember_destination(self, destination: Destination) -> None:
        self.storage.extra_data = {**self.storage.extra_data, DISCOVERY_KEY: destination.as_dict()}
        # Pages stored from this tab now belong to the new destination. A mode it does not
        # offer is dropped, so the mode step does not open with an error.
        mode_data = self.storage.get_step_data("mode")
        if mode_data and mode_data.get("mode-mode") not in offered_modes(self.node, destination):
            del self.storage.data[self.storage.step_data_key]["mode"]
        details_data = self.storage.get_step_data("details")
        if details_data:
            details_data.setlist("details-destination_check", [destination.key])
            self.storage.set_step_data("details", details_data)

    # --- forms ------------------------------------------------------------------------

    def get_form_kwargs(self, step=None):
        kwargs = super().get_form_kwargs(step)
        if step == "mode":
            kwargs["modes"] = offered_modes(self.node, self.destination)
        elif step == "details":
            destination = self.destination
            kwargs["expected_destination"] = destination.key if destination else None
        return kwargs

    def get_form_initial(self, step):
        initial = dict(super().get_form_initial(step))
        if step == "details":
            destination = self.destination
            local = clean_short_name(self.node.short_name)
            remote = clean_short_name(destination.short_name) if destination else ""
            initial.update(
                local_short_name=local,
                remote_short_name=remote,
                name=suggest_connection_name(local, remote),
                destination_check=destination.key if destination else "",
            )
        return initial

    def process_step(self, form):
        if self.steps.current == "destination":
            url = form.cleaned_data["destination_url"] or ""
            try:
                destination = discover_destination(url, node=self.node)
            except DestinationError as exc:
                form.add_error("destination_url", exc.message)
                raise _StayOnStep(form) from None
            self._remember_destination(destination)
        return super().process_step(form)

    def post(self, *args, **kwargs):
        try:
            return super().post(*args, **kwargs)
        except _StayOnStep as stay:
            return self.render(stay.form)

    def render_goto_step(self, goto_step, **kwargs):
        # "Back" does not validate, but what was typed on this step is kept when it is
        # valid, so coming forward again shows it. The destination step is only ever
        # stored together with its discovery answer, in process_step.
        current = self.steps.current
        if current != "destination" and current in self.get_form_list():
            form = self.get_form(data=self.request.POST, files=self.request.FILES)
            if form.is_valid():
                self.storage.set_step_data(current, self.get_form_step_data(form))
        return super().render_goto_step(goto_step, **kwargs)

    # --- finishing --------------------------------------------------------------------

    def render_done(self, form, **kwargs):
        # formtools' render_done, plus failures that send the admin back to a step with
        # everything they typed still there. (dispatch() has just read the General Settings
        # and refused a node that is not public.)
        final_forms = {}
        for step in self.get_form_list():
            step_form = self.get_form(
                step=step,
                data=self.storage.get_step_data(step),
                files=self.storage.get_step_files(step),
            )
            if not step_form.is_valid():
                return self.render_revalidation_failure(step, step_form, **kwargs)
            final_forms[step] = step_form
        destination = self.destination
        destination_form = final_forms["destination"]
        if destination is None or destination.url != (
            destination_form.cleaned_data["destination_url"] or ""
        ):
            destination_form.add_error(
                None, "Confirm the destination again: it was not checked for this connection."
            )
            return self.render_revalidation_failure("destination", destination_form, **kwargs)
        try:
            response = self.done(list(final_forms.values()), form_dict=final_forms, **kwargs)
        except _NameTaken:
            details_form = final_forms["details"]
            details_form.add_error(
                "name", "A connection with this name was just created. Choose another name."
            )
            return self.render_revalidation_failure("details", details_form, **kwargs)
        self.storage.reset()
        return response

    def done(self, form_list, form_dict=None, **kwargs):
        destination = self.destination
        details = form_dict["details"].cleaned_data
        try:
            connection, invitation, code = initiate_connection(
                name=details["name"],
                mode=form_dict["mode"].cleaned_data["mode"],
                local_short_name=details["local_short_name"],
                remote_short_name=details["remote_short_name"],
                description=details["description"],
                remote_url=destination.url,
                remote_uid=destination.uid,
                remote_platform=destination.platform,
                user=self.request.user,
            )
        except IntegrityError:
            # Another admin took the same name between the check and the insert.
            raise _NameTaken() from None
        remember_code(self.request, invitation, code)
        return redirect("invitations:invitation", pk=connection.pk)

    # --- pages ------------------------------------------------------------------------

    def get_context_data(self, form, **kwargs):
        context = super().get_context_data(form=form, **kwargs)
        destination = self.destination if self.steps.current != "destination" else None
        context.update(
            node=self.node,
            destination=destination,
            total_steps=TOTAL_STEPS,
            step_title=STEP_TITLES.get(self.steps.current, ""),
            mode_notes=missing_mode_reasons(self.node, destination),
        )
        if self.steps.current == "details":
            mode_data = self.storage.get_step_data("mode") or {}
            chosen = mode_data.get("mode-mode", "")
            context["chosen_mode"] = Mode(chosen).label if chosen in Mode.values else ""
        return context


initiate = InitiateConnectionWizard.as_view()
