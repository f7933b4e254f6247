"""Fixtures of the fault tests (issue 11).

``sut`` is the system under test once per event loop: the ``mailgate`` binary with its
workers on uvloop and on asyncio's own loop (``MAILGATE_LOOP``), and the embedded proxy
(``EmbeddedProxy``, on asyncio's loop in this process); ``gate`` is nginx and those
three, for what nginx shows the way for.  ``binary`` is the binary alone,
for what only a process can suffer (kill -9, reload, its file descriptor limit).  Every
gate is stopped at teardown and its log checked for [alert]/[emerg] lines and
tracebacks (``tolerate_problems`` for the tests that provoke one and check it
themselves).

``@pytest.mark.known_defect(reason, only=(names...))`` makes the test a strict xfail for
those systems (all of them by default) until the defect is fixed: remove the mark then.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import tcp_backend  # noqa: F401 - a fixture used here
from tests.faults.helpers import BINARIES, SYSTEMS


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "known_defect(reason, only=None): strict xfail for the systems in `only` (default: "
        "all) until the defect is fixed")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, names in (("sut_name", SYSTEMS), ("binary_name", BINARIES),
                           ("gate_name", ("nginx", *SYSTEMS))):
        if fixture in metafunc.fixturenames:
            metafunc.parametrize(fixture, _with_defects(metafunc, names))


def _with_defects(metafunc: pytest.Metafunc, names: tuple[str, ...]) -> list:
    marker = metafunc.definition.get_closest_marker("known_defect")
    if marker is None:
        return list(names)
    affected = marker.kwargs.get("only") or names
    xfail = pytest.mark.xfail(strict=True, reason=marker.args[0])
    return [pytest.param(name, id=name, marks=[xfail] if name in affected else [])
            for name in names]


@pytest.fixture
def sut(sut_name: str, proxy_factory, embedded_factory):
    """The proxy under test (not started): the binary on each loop, or embedded."""
    return embedded_factory() if sut_name == "embedded" else proxy_factory(sut_name)


@pytest.fixture
def gate(gate_name: str, proxy_factory, embedded_factory):
    """nginx (the reference) and each system under test (not started)."""
    return embedded_factory() if gate_name == "embedded" else proxy_factory(gate_name)


@pytest.fixture
def binary(binary_name: str, proxy_factory):
    """The ``mailgate`` binary (not started), once per event loop of its workers."""
    return proxy_factory(binary_name)
