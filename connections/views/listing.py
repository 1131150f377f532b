from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from connections.models import Connection, Status


@never_cache
@login_required
@permission_required("connections.view_connection", raise_exception=True)
def connection_list(request):
    connections = Connection.objects.all()
    if request.GET.get("fragment") == "rows":
        # Polled by static/js/live-status.js while a connection is pending, so the source
        # admin sees "Active" as soon as the other side accepts.
        return render(request, "connections/_rows.html", {"connections": connections})
    return render(
        request,
        "connections/list.html",
        {
            "connections": connections,
            "any_pending": any(c.status == Status.PENDING for c in connections),
        },
    )
