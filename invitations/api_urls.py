from django.urls import path

from invitations import api

urlpatterns = [
    path("invitations/accept/", api.AcceptInvitationView.as_view(), name="api-accept-invitation"),
]
