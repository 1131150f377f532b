from django.urls import path

from xurrent import views

app_name = "xurrent"
urlpatterns = [
    path("", views.xurrent_settings, name="settings"),
    path("check/", views.check, name="check"),
]
