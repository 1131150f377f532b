from django.urls import path

from sync import views

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
]
