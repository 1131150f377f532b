from django.apps import AppConfig


class ExalateSiteConfig(AppConfig):
    name = "exalate_site"
    verbose_name = "Exalate site"

    def ready(self) -> None:
        from exalate_site import checks  # noqa: F401  (registers the checks)
