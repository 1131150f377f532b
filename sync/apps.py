from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Synchronisation"

    def ready(self) -> None:
        from connections.extensions import add_section

        add_section("detail.after_facts", "sync/_rules_link.html")
