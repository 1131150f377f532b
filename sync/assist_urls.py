"""The AI Assist settings page, beside the Xurrent page under /settings/."""

from django.urls import path

from sync import assist_views

app_name = "assist"
urlpatterns = [path("", assist_views.ai_settings, name="settings")]
