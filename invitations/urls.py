from django.urls import path

from invitations.views import accept, code, initiate

app_name = "invitations"
urlpatterns = [
    path("accept/", accept.accept, name="accept"),
    path("initiate/", initiate.initiate, name="initiate"),
    path("<uuid:pk>/invitation/", code.invitation_code, name="invitation"),
    path("<uuid:pk>/invitation/regenerate/", code.regenerate_invitation, name="regenerate"),
    path("<uuid:pk>/invitation/revoke/", code.revoke_invitation, name="revoke"),
]
