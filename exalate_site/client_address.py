"""Which address a request comes from, for throttles and login lockouts.

`X-Forwarded-For` is written by whoever sends the request, so it is believed only as far
as the operator says proxies of their own stand in front of the node
(`EXALATE_TRUSTED_PROXIES`). Each trusted proxy appends the address it saw, so with N of
them the N-th entry from the right is the last one a trusted proxy wrote: anything to its
left may have been made up by the client.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    remote_addr = request.META.get("REMOTE_ADDR", "")
    trusted = getattr(settings, "EXALATE_TRUSTED_PROXIES", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if trusted <= 0 or not forwarded.strip():
        return remote_addr
    entries = [entry.strip() for entry in forwarded.split(",")]
    # Fewer entries than proxies: the request skipped a proxy; the left-most is the best
    # there is, as DRF's get_ident takes it too.
    candidate = entries[-min(trusted, len(entries))]
    # A proxy that writes something else than an address (or a forged value that reached
    # this position) must not become a lockout key, nor break the database's address field.
    return candidate if _is_address(candidate) else remote_addr


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
