"""Template tags for the operations view (the admin)."""

from django import template
from django.db.models import Count

from connections.extensions import sections
from connections.models import Connection, Status

register = template.Library()


@register.simple_tag
def connection_counts() -> list[dict]:
    """How many connections are in each status, every status listed (one query)."""
    counts = dict(Connection.objects.order_by().values_list("status").annotate(n=Count("pk")))
    return [
        {"status": value, "label": label, "count": counts.get(value, 0)}
        for value, label in Status.choices
    ]


@register.simple_tag
def page_sections(place: str) -> list[str]:
    """The templates other apps put at this place of a connections page."""
    return sections(place)
