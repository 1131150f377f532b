from django.urls import path

from xurrent import api

urlpatterns = [
    path("xurrent/webhook/", api.WebhookView.as_view(), name="api-xurrent-webhook"),
]
