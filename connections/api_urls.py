from django.urls import path

from connections import api

urlpatterns = [
    path("connections/<uuid:pk>/", api.ConnectionSideView.as_view(), name="api-connection"),
    path(
        "connections/<uuid:pk>/status/",
        api.ConnectionStatusView.as_view(),
        name="api-connection-status",
    ),
]
