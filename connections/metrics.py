"""Prometheus metrics of this node: `GET /metrics` (text exposition format).

Read at each scrape with two small aggregate queries: how many notifications peers have
not heard yet and how old the oldest is (a stuck outbox shows as a growing age), and how
many connections are in each status. prometheus_client is imported by the first scrape:
a web worker that is never scraped does not load it.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from connections.models import Connection, PeerNotification, Status


class NodeCollector:
    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        outbox = PeerNotification.objects.pending().aggregate(
            waiting=Count("pk"), oldest=Min("created_at")
        )
        yield GaugeMetricFamily(
            "exalate_outbox_pending",
            "Notifications to peers that are not delivered yet.",
            value=outbox["waiting"],
        )
        oldest = outbox["oldest"]
        age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "exalate_outbox_oldest_age_seconds",
            "Age of the oldest notification not delivered yet (0 when there is none).",
            value=age,
        )
        counts = dict(Connection.objects.order_by().values_list("status").annotate(n=Count("pk")))
        family = GaugeMetricFamily(
            "exalate_connections", "Connections on this node by status.", labels=["status"]
        )
        for status in Status.values:
            family.add_metric([status], counts.get(status, 0))
        yield family


def _allowed(request: HttpRequest) -> bool:
    """Staff, or a scraper with the bearer token of EXALATE_METRICS_TOKEN."""
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = settings.EXALATE_METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    return bool(token) and secrets.compare_digest(sent, f"Bearer {token}")


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse(
            "Metrics need a staff login or the metrics token.\n",
            status=403,
            content_type="text/plain",
        )
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.process_collector import ProcessCollector

    registry = CollectorRegistry()
    registry.register(NodeCollector())
    registry.register(ProcessCollector(registry=None))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
