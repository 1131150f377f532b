"""One rule for "who is calling", shared by the accept throttle and the login lockout."""

import pytest
from rest_framework.throttling import BaseThrottle

from exalate_site.client_address import client_address


@pytest.fixture
def request_from(rf):
    def make(forwarded_for: str | None = None):
        extra = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
        return rf.get("/", REMOTE_ADDR="192.0.2.10", **extra)

    return make


def test_without_trusted_proxies_the_forwarded_header_is_ignored(request_from, settings):
    settings.EXALATE_TRUSTED_PROXIES = 0
    assert client_address(request_from("203.0.113.1")) == "192.0.2.10"
    assert client_address(request_from()) == "192.0.2.10"


@pytest.mark.parametrize(
    ("trusted", "forwarded_for", "expected"),
    [
        (1, "203.0.113.1", "203.0.113.1"),
        (1, "6.6.6.6, 203.0.113.1", "203.0.113.1"),
        (2, "6.6.6.6, 203.0.113.1, 10.0.0.2", "203.0.113.1"),
        (2, "203.0.113.1", "203.0.113.1"),
        (1, "2001:db8::1", "2001:db8::1"),
        (1, "", "192.0.2.10"),
    ],
)
def test_with_n_trusted_proxies_the_nth_forwarded_address_from_the_right_is_the_client(
    request_from, settings, trusted, forwarded_for, expected
):
    settings.EXALATE_TRUSTED_PROXIES = trusted
    assert client_address(request_from(forwarded_for)) == expected


def test_a_forwarded_value_that_is_not_an_address_falls_back_to_the_peer(request_from, settings):
    settings.EXALATE_TRUSTED_PROXIES = 1
    assert client_address(request_from("6.6.6.6, not-an-address")) == "192.0.2.10"


@pytest.mark.parametrize("trusted", [0, 1, 2])
def test_drf_throttles_that_keep_their_own_get_ident_agree(request_from, settings, trusted):
    settings.EXALATE_TRUSTED_PROXIES = trusted
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": trusted}
    request = request_from("6.6.6.6, 203.0.113.1, 10.0.0.2")
    assert BaseThrottle().get_ident(request) == client_address(request)
