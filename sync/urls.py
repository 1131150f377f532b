from django.urls import path

from sync import tab_views, views

app_name = "sync"
urlpatterns = [
    path("<uuid:pk>/rules/", views.rules, name="rules"),
    path("<uuid:pk>/rules/test-run/", views.rules_test_run, name="rules_test_run"),
    path("<uuid:pk>/rules/versions/<int:number>/", views.rules_version, name="rules_version"),
    path(
        "<uuid:pk>/rules/versions/<int:number>/restore/",
        views.rules_restore,
        name="rules_restore",
    ),
    # The Sync tab (DESIGN.md §11).
    path("<uuid:pk>/sync/", tab_views.sync_tab, name="tab"),
    path("<uuid:pk>/sync/triggers/", tab_views.add_trigger_view, name="add_trigger"),
    path(
        "<uuid:pk>/sync/triggers/<int:trigger_id>/switch/",
        tab_views.switch_trigger,
        name="switch_trigger",
    ),
    path("<uuid:pk>/sync/bulk-exalate/", tab_views.bulk_exalate_view, name="bulk_exalate"),
    path("<uuid:pk>/sync/exalate/", tab_views.one_request, {"action": "exalate"}, name="exalate"),
    path(
        "<uuid:pk>/sync/unexalate/",
        tab_views.one_request,
        {"action": "unexalate"},
        name="unexalate",
    ),
    path(
        "<uuid:pk>/sync/errors/<int:error_id>/retry/",
        tab_views.error_action,
        {"action": "retry"},
        name="retry_error",
    ),
    path(
        "<uuid:pk>/sync/errors/<int:error_id>/resolve/",
        tab_views.error_action,
        {"action": "resolve"},
        name="resolve_error",
    ),
]
