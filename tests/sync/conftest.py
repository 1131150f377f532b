import pytest
from django.core.cache import cache

from connections.models import Connection
from sync.sandbox import stop_persistent_sandbox, use_persistent_sandbox
from tests.sync.engine import Pair, Side, make_local_pair
from tests.sync.fake_model import FakeModel
from tests.sync.fake_xurrent import FakeXurrent


@pytest.fixture
def persistent_sandbox():
    """Scripts run in one long-lived sandbox worker, as in run_worker (fast); it is
    stopped after the test (the sandbox tests count worker processes)."""
    use_persistent_sandbox()
    yield
    stop_persistent_sandbox()


@pytest.fixture
def pair(node, persistent_sandbox) -> Pair:
    """Two sides of an active connection with their own Xurrent accounts; request ids
    start at 1 on A and at 1001 on B so they never collide."""
    a, b = make_local_pair()
    side_a = Side(a, FakeXurrent("account-a", first_id=1))
    side_b = Side(b, FakeXurrent("account-b", first_id=1001))
    side_a.rules()
    side_b.rules()
    return Pair(side_a, side_b)


@pytest.fixture(autouse=True)
def one_twin_at_a_time(settings):
    """In-process tests run inside one database transaction, which other threads'
    connections cannot see: the engine works on one twin at a time here (live tests run
    real workers with their threads)."""
    settings.SYNC_THREADS = 1


AI_KEY = "sk-ai-key-5ecret-0002"


@pytest.fixture
def fake_model():
    """A fake OpenAI-compatible chat completions API on 127.0.0.1 (tests/sync/fake_model.py)."""
    fake = FakeModel().start()
    yield fake
    fake.stop()


@pytest.fixture
def fresh_allowances():
    """AI Assist's draft counts live in the cache, which outlives each test's database:
    the test starts and ends with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def ai_node(node, fake_model, settings):
    """A node whose AI Assist calls the fake model (a local address: allowed here), with
    fresh draft allowances (they live in the cache, which outlives a test's database)."""
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    settings.EXALATE_AI_TIMEOUT = 5.0
    node.ai_url, node.ai_model = fake_model.url, "fake-coder"
    node.set_ai_api_key(AI_KEY)
    node.save()
    cache.clear()
    yield node
    cache.clear()


def make_connection(mode: str) -> Connection:
    """A source connection of acme to globex with nothing set up: what the rules page's
    tests work on."""
    return Connection.objects.create(
        name=f"Acme {mode}",
        mode=mode,
        role="source",
        local_short_name="acme",
        remote_short_name="globex",
    )


@pytest.fixture
def basic_connection(db) -> Connection:
    return make_connection("basic")


# The Sync tab's tests: an active local connection, its Xurrent account and an editor.
from tests.sync.tabkit import (  # noqa: E402, F401
    connection,
    editor,
    editor_client,
    gateway,
    sides,
    xurrent,
)
