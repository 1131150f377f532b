"""Triggers as the Sync tab keeps them: a query is saved only once this node's Xurrent
account took it, so a filter Xurrent refuses never sits there matching nothing."""

from __future__ import annotations

from connections.models import Connection
from sync.models import Trigger
from sync.services.gateway import Gateway, GatewayError, NotConfigured, first_page, get_gateway
from sync.services.scope import ScopeError, parse_query


def canonical_query(filters: dict[str, str]) -> str:
    return "&".join(f"{name}={value}" for name, value in filters.items())


def check_query(query: str, *, gateway: Gateway | None = None) -> str:
    """The query in Xurrent's own syntax once Xurrent answered it (one page of one
    request); ScopeError with the reason when it is not a filter or Xurrent refuses it."""
    filters = parse_query(query)
    try:
        gateway = gateway or get_gateway()
        first_page(gateway, filters, per_page=1)
    except NotConfigured as exc:
        raise ScopeError(f"{exc} A trigger is checked against it before it is saved.") from None
    except GatewayError as exc:
        if exc.kind == "validation":
            raise ScopeError(f"Xurrent refused this filter: {exc.message}") from None
        raise ScopeError(
            f"The filter could not be checked, so it was not saved: {exc.message}"
        ) from None
    return canonical_query(filters)


def create_trigger(
    connection: Connection, query: str, *, note: str = "", active: bool = True, user=None
) -> Trigger:
    canonical = check_query(query)
    return Trigger.objects.create(
        connection=connection,
        query=canonical,
        note=note.strip()[:200],
        active=active,
        created_by=user,
    )


def change_trigger(trigger: Trigger, query: str, *, note: str = "") -> Trigger:
    """A new query (checked like a new trigger's) and note; the switch stays as it is."""
    canonical = check_query(query)
    trigger.query = canonical
    trigger.note = note.strip()[:200]
    trigger.save(update_fields=["query", "note"])
    return trigger


def switch_trigger(trigger: Trigger, active: bool) -> Trigger:
    """On or off. Switching on again does not sync what matched meanwhile: Bulk exalate
    does that."""
    trigger.active = active
    trigger.save(update_fields=["active"])
    return trigger


def delete_trigger(trigger: Trigger) -> None:
    """Requests already synced stay synced: a trigger only decides what starts syncing."""
    trigger.delete()
