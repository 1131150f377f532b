import pytest

from tests.connections.peers import FakePeer, make_paired


@pytest.fixture
def peer():
    """A peer node that is down until the test calls `peer.start()`."""
    fake = FakePeer()
    yield fake
    fake.stop()


@pytest.fixture
def connection(node, peer, settings):
    """An active connection paired with `peer` (modules with other needs override this)."""
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    return make_paired(remote_url=peer.url)
