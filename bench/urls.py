"""The product's URLs plus `POST /bench/insert/`: the baseline of the accept benchmark, a
DRF endpoint that inserts one row in a transaction, served by the same workers."""

import uuid

from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from exalate_site.urls import handler404, handler500
from exalate_site.urls import urlpatterns as product_urls

__all__ = ["handler404", "handler500", "urlpatterns"]


class InsertView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request):
        with transaction.atomic():
            group = Group.objects.create(name=f"bench-{uuid.uuid4().hex}")
        return Response({"id": group.pk}, status=201)


urlpatterns = [path("bench/insert/", InsertView.as_view()), *product_urls]
