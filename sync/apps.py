from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Synchronisation"

    def ready(self) -> None:
        from connections.extensions import add_section, add_worker_task
        from sync.services.bulk import bulk_worker_task
        from sync.services.worker import sync_worker_task

        add_section("detail.after_facts", "sync/_rules_link.html")
        # A bulk exalate pressed on the Sync tab is taken first in a round (it goes on in
        # a thread of its own), then the sync queue: both in the node's one background process.
        add_worker_task(bulk_worker_task)
        add_worker_task(sync_worker_task)
