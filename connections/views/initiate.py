from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render


@login_required
@permission_required("connections.add_connection", raise_exception=True)
def initiate(request):
    return render(request, "placeholder.html", {"title": "Initiate connection"})
