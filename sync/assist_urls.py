"""The AI Assist settings page, beside the Xurrent page under /settings/."""

from django.urls import path

from sync.views import assist

app_name = "assist"
urlpatterns = [path("", assist.ai_settings, name="settings")]
