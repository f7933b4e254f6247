"""Servers of the TLS tests (their certificates: the ``pki`` fixture of tests/support)."""

import pytest

from tests.tls.server import ServerProcess, ServerThread


@pytest.fixture
def serve():
    """serve(name=context, ...) -> ServerThread, stopped after the test."""
    started = []

    def start(**contexts):
        server = ServerThread(**contexts)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def workers():
    """workers(build=None, name=context, ...) -> ServerProcess, killed after the test."""
    started = []

    def start(build=None, **contexts):
        worker = ServerProcess(build, **contexts)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
