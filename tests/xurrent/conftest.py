"""A simulator of Xurrent (xurrent_sim) for the client's tests, over real HTTP."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from xurrent import client as client_module
from xurrent.client import RateBudget, XurrentClient
from xurrent_sim.testing import running_simulator

ACCOUNT = "widget-test"
TOKEN = "sim-token-SECRET-0123456789"
NEW_REQUEST = {"subject": "Printer on fire", "category": "incident", "impact": "low", "team_id": 1}


@pytest.fixture(autouse=True)
def fresh_throttle():
    """The webhook throttle counts in the cache: start every test with a clean count."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def sim_process():
    """One simulator per test module (starting one takes a moment); reset for each test."""
    with running_simulator(account=ACCOUNT, token=TOKEN, extra_args=["--quiet"]) as running:
        yield running


@pytest.fixture
def sim(sim_process):
    sim_process.reset()
    yield sim_process
    sim_process.clear_faults()


@pytest.fixture
def private_allowed(settings):
    """The simulator lives on 127.0.0.1, which the outbound guard refuses by default."""
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True


def fast_budget() -> RateBudget:
    """A budget of its own, large enough never to be what a test waits for."""
    return RateBudget(per_hour=10**7, burst=10**5)


@pytest.fixture
def make_client(sim, private_allowed):
    """`make_client(**options)`: a client of the simulator's account, quick to retry."""

    def make(**options) -> XurrentClient:
        settings = {
            "retry_base": 0.05,
            "time_limit": 10.0,
            "budget": fast_budget(),
            **options,
        }
        base_url = settings.pop("base_url", sim.url)
        account = settings.pop("account", ACCOUNT)
        token = settings.pop("token", TOKEN)
        return XurrentClient(base_url, account, token, **settings)

    return make


@pytest.fixture
def xurrent(make_client) -> XurrentClient:
    return make_client()


def create_requests(client: XurrentClient, count: int, **fields) -> list[dict]:
    return [
        client.create_request({**NEW_REQUEST, "subject": f"Request {n}", **fields})
        for n in range(1, count + 1)
    ]


@pytest.fixture
def configured(node, sim, private_allowed):
    """This node's General Settings pointing at the simulator's account."""
    node.xurrent_api_url = sim.url
    node.xurrent_account = ACCOUNT
    node.set_xurrent_token(TOKEN)
    node.save()
    return node


@pytest.fixture(autouse=True)
def fresh_budgets():
    """A 429 pauses every client of the account in the process: not into the next test."""
    client_module._budgets.clear()
    yield
    client_module._budgets.clear()
