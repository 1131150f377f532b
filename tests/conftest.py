import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command

from nodes.models import GeneralSettings, end_request
from tests.livenodes import LiveNode, start_node


@pytest.fixture(scope="session", autouse=True)
def collected_static_files():
    """Pages name their static files through production's manifest storage (hashed names),
    which knows only collected files: collect them once for the run (STATIC_ROOT is a
    temporary folder, tests/env_defaults.py)."""
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Real hashing costs ~0.4 s per login made; tests check behaviour, not hash strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_settings_from_an_earlier_request():
    """General Settings are kept for the rest of a request; a test client request that
    raised never finished, so its copy must not reach the next test (a new database)."""
    end_request()
    yield
    end_request()


@pytest.fixture
def node(db) -> GeneralSettings:
    return GeneralSettings.load()


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("boss", "", "pw-boss-123456")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def viewer(db):
    user = get_user_model().objects.create_user("viewer", "", "pw-viewer-123456")
    user.user_permissions.add(Permission.objects.get(codename="view_connection"))
    return user


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def live_nodes(tmp_path):
    """Start real nodes: `a = live_nodes("a")`, each with its own SQLite database."""
    started: list[LiveNode] = []

    def start(name: str, **env: str) -> LiveNode:
        node = start_node(tmp_path / name, name, **env)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests (row locks, SKIP LOCKED) run in the PostgreSQL pass of CI.

    They are deselected, not skipped, on SQLite; on PostgreSQL they always run, and
    fail loudly if the database cannot be reached.
    """
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    keep = [item for item in items if item.get_closest_marker("postgres") is None]
    dropped = [item for item in items if item.get_closest_marker("postgres") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(autouse=True)
def no_sandbox_left_running():
    """A test that ran the worker's sync round (it keeps one long-lived sandbox process)
    must not leave that process to the tests after it."""
    yield
    from sync.sandbox import stop_persistent_sandbox
    from sync.services.parallel import stop_threads

    stop_persistent_sandbox()
    stop_threads()  # nor threads holding database connections
