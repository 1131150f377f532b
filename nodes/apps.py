from django.apps import AppConfig
from django.core.signals import request_finished, request_started


class NodesConfig(AppConfig):
    name = "nodes"
    verbose_name = "This node"

    def ready(self) -> None:
        from nodes.models import end_request, start_request

        # General Settings are read once per request (nodes.models.GeneralSettings.load).
        request_started.connect(start_request, dispatch_uid="nodes.start_request")
        request_finished.connect(end_request, dispatch_uid="nodes.end_request")
