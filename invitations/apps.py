from django.apps import AppConfig


class InvitationsConfig(AppConfig):
    name = "invitations"
    verbose_name = "Invitations"

    def ready(self) -> None:
        from connections.extensions import add_section

        add_section("list.buttons", "invitations/_list_buttons.html")
        add_section("detail.after_status", "invitations/_invitation_panel.html")
