from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, render

from connections.models import Connection


@login_required
@permission_required("connections.view_connection", raise_exception=True)
def rules(request, pk):
    connection = get_object_or_404(Connection, pk=pk)
    return render(request, "placeholder.html", {"title": f"Sync rules of {connection.name}"})
