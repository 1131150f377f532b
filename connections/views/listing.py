from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render

from connections.models import Connection


@login_required
@permission_required("connections.view_connection", raise_exception=True)
def connection_list(request):
    connections = Connection.objects.all()
    return render(request, "connections/list.html", {"connections": connections})
