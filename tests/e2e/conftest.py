"""Fixtures of the end-to-end suite.

``gate`` is the proxy under test, once per implementation: those of ``--mail-proxy``
(Debian's nginx, the ``mailgate`` binary) and ``embedded`` (mailgate's ``MailProxy``
in this process, from tests/support's ``embedded_factory``).  ``pair`` is ``(nginx, system under test)`` for conformance tests,
once with the mailgate binary and once embedded.  Every gate is stopped at teardown,
and a log with [alert]/[emerg] lines, a Python traceback or an exception that reached
the embedded event loop fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

SYSTEMS_UNDER_TEST = ("mailgate", "embedded")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mailgate_bug(reason, only=None): mailgate differs from nginx here; strict xfail for "
        "mailgate's implementations (or those in `only`) until the bug is fixed; nginx must pass")


def _implementations(metafunc: pytest.Metafunc, names) -> list:
    bug = metafunc.definition.get_closest_marker("mailgate_bug")
    if bug is None:
        return list(names)
    affected = bug.kwargs.get("only") or [n for n in names if n != "nginx"]
    marks = [pytest.mark.xfail(strict=True, reason="mailgate bug: " + bug.args[0])]
    return [pytest.param(name, id=name, marks=marks if name in affected else []) for name in names]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gate_impl" in metafunc.fixturenames:
        chosen = [n.strip() for n in metafunc.config.getoption("--mail-proxy").split(",")]
        names = [n for n in chosen if n] + ["embedded"]
        metafunc.parametrize("gate_impl", _implementations(metafunc, names))
    if "sut_impl" in metafunc.fixturenames:
        metafunc.parametrize("sut_impl", _implementations(metafunc, SYSTEMS_UNDER_TEST))


def _make(name: str, proxy_factory, embedded_factory):
    return embedded_factory() if name == "embedded" else proxy_factory(name)


@pytest.fixture
def gate(gate_impl: str, proxy_factory, embedded_factory):
    """The proxy under test (not started): nginx, the mailgate binary, or embedded."""
    return _make(gate_impl, proxy_factory, embedded_factory)


@pytest.fixture
def pair(sut_impl: str, proxy_factory, embedded_factory):
    """``(nginx, mailgate)``, neither started; mailgate is the binary or embedded."""
    return proxy_factory("nginx"), _make(sut_impl, proxy_factory, embedded_factory)


@pytest.fixture
def tcp_backend(port_allocator) -> Iterator[Callable]:
    """Make ``TcpBackend(handler)`` servers; all stopped at teardown."""
    from tests.e2e.backends import TcpBackend

    made = []

    def make(handler):
        made.append(TcpBackend(port_allocator, handler))
        return made[-1]

    yield make
    for backend in made:
        backend.stop()
