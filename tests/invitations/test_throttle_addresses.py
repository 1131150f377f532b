"""The accept throttle counts per client address, and a forged X-Forwarded-For is no address."""

import random

import pytest
from django.core.cache import cache

ACCEPT = "/api/v1/invitations/accept/"


@pytest.fixture
def rate_20_per_minute(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"accept": "20/min"},
    }


def random_address() -> str:
    return ".".join(str(random.randint(1, 254)) for _ in range(4))


def accept_calls(client, count: int, forwarded_for) -> list[int]:
    # An empty body is refused with 400 after the throttle has counted the call, so every
    # answer is either "counted and let through" (400) or "throttled" (429).
    statuses = []
    for _ in range(count):
        extra = {"HTTP_X_FORWARDED_FOR": forwarded_for()} if forwarded_for else {}
        statuses.append(
            client.post(
                ACCEPT, {}, content_type="application/json", REMOTE_ADDR="198.51.100.9", **extra
            ).status_code
        )
    return statuses


def test_random_forwarded_for_headers_are_throttled_like_calls_without_one(
    client, db, rate_20_per_minute
):
    plain = accept_calls(client, 100, None)
    cache.clear()
    forged = accept_calls(client, 100, random_address)
    assert plain.count(400) == 20 and plain.count(429) == 80
    assert forged.count(400) == 20 and forged.count(429) == 80


def test_a_trusted_proxy_makes_the_right_most_forwarded_address_count(
    client, db, rate_20_per_minute, settings
):
    settings.EXALATE_TRUSTED_PROXIES = 1
    one_client = accept_calls(client, 30, lambda: f"{random_address()}, 203.0.113.7")
    assert one_client.count(400) == 20 and one_client.count(429) == 10
    # Behind the same proxy, another client has its own count.
    other_client = accept_calls(client, 1, lambda: "203.0.113.8")
    assert other_client == [400]
