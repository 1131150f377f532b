from django.urls import path

from connections import api

urlpatterns = [
    path("instance/", api.InstanceView.as_view(), name="api-instance"),
]
