from django.urls import path

from sync import api

urlpatterns = [
    path("connections/<uuid:pk>/sync/", api.SyncEventView.as_view(), name="api-sync"),
    path("connections/<uuid:pk>/sync/ack/", api.SyncAckView.as_view(), name="api-sync-ack"),
]
