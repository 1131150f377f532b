from django.urls import path

from connections.views import detail, initiate, listing, rules

app_name = "connections"
urlpatterns = [
    path("", listing.connection_list, name="list"),
    path("initiate/", initiate.initiate, name="initiate"),
    path("<uuid:pk>/", detail.connection_detail, name="detail"),
    path("<uuid:pk>/rules/", rules.rules, name="rules"),
]
