from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from connections import metrics
from exalate_site import openapi, views

handler404 = "exalate_site.views.handler404"
handler500 = "exalate_site.views.handler500"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="connections:list", permanent=False)),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    # Each app serves its own pages under /connections/ (DESIGN.md §4).
    path("connections/", include("connections.urls")),
    path("connections/", include("invitations.urls")),
    path("connections/", include("sync.urls")),
    path("settings/xurrent/", include("xurrent.urls")),
    path("settings/ai/", include("sync.assist_urls")),
    path("api/v1/", include("nodes.api_urls")),
    path("api/v1/", include("connections.api_urls")),
    path("api/v1/", include("invitations.api_urls")),
    path("api/v1/", include("xurrent.api_urls")),
    path("api/v1/", include("sync.api_urls")),
    # drf-spectacular is imported on the first request of either (exalate_site/openapi.py).
    path("api/schema/", openapi.schema_view, name="api-schema"),
    path("api/docs/", openapi.docs_view, name="api-docs"),
]
