from django.urls import path

from connections.views import detail, initiate, invitation, listing, rules

app_name = "connections"
urlpatterns = [
    path("", listing.connection_list, name="list"),
    path("initiate/", initiate.initiate, name="initiate"),
    path("<uuid:pk>/invitation/", invitation.invitation_code, name="invitation"),
    path(
        "<uuid:pk>/invitation/regenerate/",
        invitation.regenerate_invitation,
        name="regenerate_invitation",
    ),
    path(
        "<uuid:pk>/invitation/revoke/",
        invitation.revoke_invitation,
        name="revoke_invitation",
    ),
    path("<uuid:pk>/", detail.connection_detail, name="detail"),
    path("<uuid:pk>/test/", detail.test, name="test"),
    path("<uuid:pk>/deactivate/", detail.deactivate, name="deactivate"),
    path("<uuid:pk>/activate/", detail.activate, name="activate"),
    path("<uuid:pk>/delete/", detail.delete, name="delete"),
    path("<uuid:pk>/rules/", rules.rules, name="rules"),
    path("<uuid:pk>/rules/test-run/", rules.rules_test_run, name="rules_test_run"),
    path("<uuid:pk>/rules/versions/<int:number>/", rules.rules_version, name="rules_version"),
    path(
        "<uuid:pk>/rules/versions/<int:number>/restore/",
        rules.rules_restore,
        name="rules_restore",
    ),
]
