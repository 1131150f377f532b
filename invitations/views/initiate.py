"""Initiate connection: destination → mode → connection information → invitation code.

The checks are the forms of invitations/services/initiating.py, shared with the
`initiate_connection` command. formtools validates every step again on later steps and
before `done()`, so the destination is asked once per URL: its answer is kept in the
wizard's storage (`extra_data`) and the destination form reads it from there afterwards.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import NON_FIELD_ERRORS
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from formtools.wizard.views import SessionWizardView

from invitations.services import initiating
from invitations.views.code import render_code_page
from invitations.wizard_forms import DestinationForm, DetailsForm, ModeForm
from nodes.discovery import Destination, discover_destination, missing_mode_reasons
from nodes.models import GeneralSettings, Mode

TOTAL_STEPS = 4  # the three forms, then the invitation code page
STEP_TITLES = {
    "destination": "Destination",
    "mode": "Configuration mode",
    "details": "Connection information",
}
# extra_data key: what each destination URL answered, by its normalised URL ("" = no URL).
ANSWERS_KEY = "discovered_destinations"


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

    # --- the destination, asked once per URL --------------------------------------------

    def discover(self, url: str) -> Destination:
        """The destination form's `discover`: what `url` answered, asking it the first time."""
        known = self.storage.extra_data.get(ANSWERS_KEY, {}).get(url)
        return Destination.from_dict(known) or discover_destination(url, node=self.node)

    def remember(self, url: str, destination: Destination) -> None:
        answers = {**self.storage.extra_data.get(ANSWERS_KEY, {}), url: destination.as_dict()}
        self.storage.extra_data = {**self.storage.extra_data, ANSWERS_KEY: answers}

    @property
    def destination(self) -> Destination | None:
        """The destination of the stored first step (None until that step is valid)."""
        where = self.get_cleaned_data_for_step("destination")
        return where["destination"] if where else None

    # --- forms --------------------------------------------------------------------------

    def get_form_kwargs(self, step=None):
        step = step or self.steps.current
        # The destination step must not ask for the destination: it is what finds it.
        destination = None if step == "destination" else self.destination
        return {
            **super().get_form_kwargs(step),
            **initiating.form_kwargs(step, self.node, destination, discover=self.discover),
        }

    def get_form_initial(self, step):
        initial = dict(super().get_form_initial(step))
        if step == "details":
            initial.update(initiating.details_initial(self.node, self.destination))
        return initial

    def process_step(self, form):
        data = super().process_step(form)
        if self.steps.current == "destination":
            self.remember(form.cleaned_data["destination_url"], form.cleaned_data["destination"])
        elif self.steps.current == "details":
            # The check is about the page that was sent; what is kept must not outlive a
            # change of destination (the form fills in the current one when shown again).
            data = data.copy()
            data.pop(form.add_prefix("destination_check"), None)
        return data

    def render_goto_step(self, goto_step, **kwargs):
        # "Back" does not validate, but what was typed on this step is kept when it is
        # valid, so coming forward again shows it. The destination step has no Back.
        if self.steps.current != "destination":
            form = self.get_form(data=self.request.POST, files=self.request.FILES)
            if form.is_valid():
                self.storage.set_step_data(self.steps.current, self.process_step(form))
        return super().render_goto_step(goto_step, **kwargs)

    # --- finishing ----------------------------------------------------------------------

    def done(self, form_list, form_dict=None, **kwargs):
        # A refusal (the name was taken meanwhile) propagates to render_done below.
        connection, invitation, code = initiating.create(
            form_dict["destination"].cleaned_data["destination"],
            mode=form_dict["mode"].cleaned_data["mode"],
            details=form_dict["details"].cleaned_data,
            user=self.request.user,
        )
        # Shown in this answer, once: the code is kept nowhere, not even in the session.
        return render_code_page(self.request, connection, invitation, code)

    def render_done(self, form, **kwargs):
        # formtools resets the wizard once done() returns. A refusal raised out of done()
        # skips that reset, so the destination and mode are kept and the admin only
        # changes what was refused.
        try:
            return super().render_done(form, **kwargs)
        except initiating.InitiateRefused as refused:
            return self.render_refusal(refused)

    def render_refusal(self, refused: initiating.InitiateRefused):
        """The refused step again, with what was typed and why."""
        form = self.get_form(
            step=refused.step,
            data=self.storage.get_step_data(refused.step),
            files=self.storage.get_step_files(refused.step),
        )
        form.is_valid()  # cleaned, so errors can be added; the refusal's words replace its own
        for field, errors in refused.errors.items():
            form.errors.pop(field, None)
            for error in errors:
                form.add_error(None if field == NON_FIELD_ERRORS else field, error)
        return self.render_revalidation_failure(refused.step, form)

    # --- pages --------------------------------------------------------------------------

    def get_context_data(self, form, **kwargs):
        context = super().get_context_data(form=form, **kwargs)
        step = self.steps.current
        destination = None if step == "destination" else self.destination
        chosen = (self.get_cleaned_data_for_step("mode") or {}) if step == "details" else {}
        context.update(
            node=self.node,
            destination=destination,
            total_steps=TOTAL_STEPS,
            step_title=STEP_TITLES.get(step, ""),
            mode_notes=missing_mode_reasons(self.node, destination),
            chosen_mode=Mode(chosen["mode"]).label if chosen.get("mode") else "",
        )
        return context


initiate = InitiateConnectionWizard.as_view()
