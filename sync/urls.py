from django.urls import path

from sync import assist_views, transfer_views, views

app_name = "sync"
urlpatterns = [
    path("<uuid:pk>/rules/", views.rules, name="rules"),
    path("<uuid:pk>/rules/test-run/", views.rules_test_run, name="rules_test_run"),
    path("<uuid:pk>/rules/assist/", assist_views.rules_assist, name="rules_assist"),
    path("<uuid:pk>/rules/export/", transfer_views.rules_export, name="rules_export"),
    path("<uuid:pk>/rules/import/", transfer_views.rules_import, name="rules_import"),
    path("<uuid:pk>/rules/versions/<int:number>/", views.rules_version, name="rules_version"),
    path(
        "<uuid:pk>/rules/versions/<int:number>/restore/",
        views.rules_restore,
        name="rules_restore",
    ),
]
