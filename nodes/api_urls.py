from django.urls import path

from nodes import api

urlpatterns = [
    path("instance/", api.InstanceView.as_view(), name="api-instance"),
]
