from django.apps import AppConfig


class XurrentConfig(AppConfig):
    name = "xurrent"
    verbose_name = "Xurrent account"
