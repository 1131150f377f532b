"""The page a login gets while its user name is locked out at its address (django-axes)."""

from __future__ import annotations

import math
from datetime import datetime

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    username = get_client_username(request, credentials) or ""
    address = getattr(request, "axes_ip_address", "") or ""
    locked_until = _locked_until(request, username, address)
    response = render(
        request,
        "registration/locked_out.html",
        {
            "username": username,
            "address": address,
            "locked_until": locked_until,
            "failure_limit": settings.AXES_FAILURE_LIMIT,
        },
        status=429,
    )
    seconds = (locked_until - timezone.now()).total_seconds()
    response["Retry-After"] = str(max(1, math.ceil(seconds)))
    return response


def _locked_until(request: HttpRequest, username: str, address: str) -> datetime:
    # The lockout lasts the cool-off after the last failure counted (tries made while
    # locked out are not counted, so this does not move).
    last = AccessAttempt.objects.filter(username=username, ip_address=address).aggregate(
        last=Max("attempt_time")
    )["last"]
    return (last or timezone.now()) + get_cool_off(request)
