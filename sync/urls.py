from django.urls import path

from sync import views
from sync.views import assist, tab, tab_actions, transfer

app_name = "sync"
urlpatterns = [
    path("<uuid:pk>/rules/", views.rules, name="rules"),
    path("<uuid:pk>/rules/test-run/", views.rules_test_run, name="rules_test_run"),
    path("<uuid:pk>/rules/assist/", assist.rules_assist, name="rules_assist"),
    path("<uuid:pk>/rules/export/", transfer.rules_export, name="rules_export"),
    path("<uuid:pk>/rules/import/", transfer.rules_import, name="rules_import"),
    path("<uuid:pk>/rules/versions/<int:number>/", views.rules_version, name="rules_version"),
    path(
        "<uuid:pk>/rules/versions/<int:number>/restore/",
        views.rules_restore,
        name="rules_restore",
    ),
    # The Sync tab and its buttons.
    path("<uuid:pk>/sync/", tab.sync_tab, name="tab"),
    path("<uuid:pk>/sync/twins/<uuid:twin_id>/", tab.twin_page, name="twin"),
    path("<uuid:pk>/sync/triggers/", tab_actions.add_trigger, name="add_trigger"),
    path(
        "<uuid:pk>/sync/triggers/<int:trigger_pk>/", tab_actions.edit_trigger, name="edit_trigger"
    ),
    path(
        "<uuid:pk>/sync/triggers/<int:trigger_pk>/switch/",
        tab_actions.switch_trigger_view,
        name="switch_trigger",
    ),
    path(
        "<uuid:pk>/sync/triggers/<int:trigger_pk>/delete/",
        tab_actions.delete_trigger_view,
        name="delete_trigger",
    ),
    path("<uuid:pk>/sync/exalate/", tab_actions.exalate, name="exalate"),
    path("<uuid:pk>/sync/unexalate/", tab_actions.unexalate, name="unexalate"),
    path("<uuid:pk>/sync/bulk-exalate/", tab_actions.bulk_exalate, name="bulk_exalate"),
    path("<uuid:pk>/sync/errors/<int:error_pk>/retry/", tab_actions.retry, name="retry"),
    path("<uuid:pk>/sync/errors/<int:error_pk>/resolve/", tab_actions.resolve_view, name="resolve"),
]
