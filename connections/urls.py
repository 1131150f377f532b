from django.urls import path

from connections.views import detail, listing

app_name = "connections"
urlpatterns = [
    path("", listing.connection_list, name="list"),
    path("<uuid:pk>/", detail.connection_detail, name="detail"),
    path("<uuid:pk>/test/", detail.test, name="test"),
    path("<uuid:pk>/deactivate/", detail.deactivate, name="deactivate"),
    path("<uuid:pk>/activate/", detail.activate, name="activate"),
    path("<uuid:pk>/delete/", detail.delete, name="delete"),
]
