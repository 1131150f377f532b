"""The one view of the bare Django + DRF site (bench/bare_settings.py): a row count."""

from django.contrib.auth import get_user_model
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class CountView(APIView):
    permission_classes: list = []

    def get(self, request):
        return Response({"users": get_user_model().objects.count()})


urlpatterns = [path("", CountView.as_view())]
