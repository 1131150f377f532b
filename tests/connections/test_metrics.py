"""`GET /metrics`: the outbox backlog and the connections by status, for Prometheus."""

from datetime import timedelta

import time_machine
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from connections.services import actions


def samples(response) -> dict:
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_metrics_show_what_peers_were_not_told_yet_and_how_old_it_is(admin_client, connection):
    actions.deactivate_connection(connection)  # the peer is down: it waits in the outbox
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        values = samples(admin_client.get("/metrics"))
    assert values[("exalate_outbox_pending", ())] == 1
    assert 290 < values[("exalate_outbox_oldest_age_seconds", ())] < 330
    assert values[("exalate_connections", (("status", "deactivated"),))] == 1
    assert values[("exalate_connections", (("status", "active"),))] == 0


def test_an_empty_outbox_has_no_age(admin_client, node):
    values = samples(admin_client.get("/metrics"))
    assert values[("exalate_outbox_pending", ())] == 0
    assert values[("exalate_outbox_oldest_age_seconds", ())] == 0


def test_metrics_need_staff_or_the_token(client, viewer_client, node, settings):
    settings.EXALATE_METRICS_TOKEN = "scrape-me-0123456789"
    assert client.get("/metrics").status_code == 403
    assert viewer_client.get("/metrics").status_code == 403
    wrong = Client(headers={"Authorization": "Bearer nope"})
    assert wrong.get("/metrics").status_code == 403
    scraper = Client(headers={"Authorization": "Bearer scrape-me-0123456789"})
    assert ("exalate_outbox_pending", ()) in samples(scraper.get("/metrics"))


def test_without_a_token_only_staff_read_metrics(client, node, settings):
    settings.EXALATE_METRICS_TOKEN = ""
    assert Client(headers={"Authorization": "Bearer "}).get("/metrics").status_code == 403
