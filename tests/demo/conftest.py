import pytest

from tests.demo.helpers import ServerThread, make_store


@pytest.fixture
def store():
    return make_store()


@pytest.fixture(params=["asyncio", "uvloop"])
def server(request, store):
    """The demo server on a stock asyncio loop and on uvloop."""
    srv = ServerThread(store, request.param)
    yield srv
    srv.stop()
