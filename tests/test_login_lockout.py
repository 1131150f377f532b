"""Logins are locked out after repeated failures, per user name and client address."""

import datetime as dt

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.test_settings import run_django

LOGIN_URLS = ["/accounts/login/", "/admin/login/"]
ADDRESS = "203.0.113.5"
RIGHT_PASSWORD = "pw-boss-123456"  # the admin_user fixture's


def log_in(url: str, password: str, address: str = ADDRESS, **extra):
    browser = Client()
    response = browser.post(
        url, {"username": "boss", "password": password}, REMOTE_ADDR=address, **extra
    )
    return response, browser


def fail(url: str, times: int, address: str = ADDRESS) -> list[int]:
    return [log_in(url, f"wrong-{i}", address)[0].status_code for i in range(times)]


def logged_in(browser: Client) -> bool:
    return SESSION_KEY in browser.session


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_six_wrong_passwords_lock_the_login_and_the_right_one_is_then_refused(admin_user, url):
    assert fail(url, 6) == [200, 200, 200, 200, 429, 429]
    response, browser = log_in(url, RIGHT_PASSWORD)
    assert response.status_code == 429
    assert not logged_in(browser)
    page = response.content.decode()
    assert "Login locked" in page
    assert "boss" in page and ADDRESS in page
    assert "until" in page
    assert "axes_reset_username boss" in page
    assert 14 * 60 <= int(response["Retry-After"]) <= 15 * 60


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_a_lockout_does_not_reach_the_same_user_at_another_address(admin_user, url):
    fail(url, 6)
    response, browser = log_in(url, RIGHT_PASSWORD, address="203.0.113.6")
    assert response.status_code == 302
    assert logged_in(browser)


def test_a_forged_forwarded_for_header_does_not_lift_a_lockout(admin_user):
    fail("/accounts/login/", 5)
    response, browser = log_in(
        "/accounts/login/", RIGHT_PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.77"
    )
    assert response.status_code == 429
    assert not logged_in(browser)


def test_with_a_trusted_proxy_the_forwarded_address_is_the_one_locked(admin_user, settings):
    settings.EXALATE_TRUSTED_PROXIES = 1
    for i in range(5):
        log_in("/accounts/login/", f"wrong-{i}", HTTP_X_FORWARDED_FOR="198.51.100.77")
    locked, _ = log_in("/accounts/login/", RIGHT_PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.77")
    assert locked.status_code == 429
    # The proxy's own address (REMOTE_ADDR) with another client behind it is not locked.
    other, _ = log_in("/accounts/login/", RIGHT_PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.78")
    assert other.status_code == 302


def test_resetting_the_user_name_lets_the_user_in_again(admin_user):
    fail("/accounts/login/", 6)
    call_command("axes_reset_username", "boss")
    response, browser = log_in("/accounts/login/", RIGHT_PASSWORD)
    assert response.status_code == 302
    assert logged_in(browser)


def test_the_lockout_ends_after_the_cool_off(admin_user):
    fail("/accounts/login/", 5)
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=16)):
        response, browser = log_in("/accounts/login/", RIGHT_PASSWORD)
    assert response.status_code == 302
    assert logged_in(browser)


def test_fewer_failures_than_the_limit_do_not_lock_and_a_success_clears_them(admin_user):
    assert fail("/accounts/login/", 4) == [200] * 4
    assert log_in("/accounts/login/", RIGHT_PASSWORD)[0].status_code == 302
    assert fail("/accounts/login/", 4) == [200] * 4


def test_admins_see_and_delete_lockouts_in_the_admin(admin_user, admin_client):
    fail("/accounts/login/", 5)
    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert ADDRESS in listing.content.decode()
    attempt = AccessAttempt.objects.get(username="boss")
    admin_client.post(
        f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert not AccessAttempt.objects.exists()
    assert log_in("/accounts/login/", RIGHT_PASSWORD)[0].status_code == 302


def test_the_limit_and_cool_off_come_from_the_environment():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(), "
        "s.AXES_LOCKOUT_PARAMETERS)"
    )
    default = run_django(code, DEBUG="1")
    assert default.stdout.split("\n")[0] == "5 900.0 [['username', 'ip_address']]"
    custom = run_django(
        code, DEBUG="1", EXALATE_LOGIN_FAILURE_LIMIT="3", EXALATE_LOGIN_COOLOFF_MINUTES="2.5"
    )
    assert custom.stdout.startswith("3 150.0 ")
