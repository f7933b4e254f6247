"""The port allocator: distinct, bindable ports, locked across processes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ports import PortAllocator, PortsExhausted, _bindable, default_port_range
from tests.support.proxy import REPO_ROOT


def _quiet_window(size: int) -> tuple[int, int]:
    """A run of ``size`` bindable ports below the allocator's default range, so the
    servers this test session runs cannot sit in it."""
    for low in range(7000, 9000, size):
        if all(_bindable(port, "127.0.0.1") for port in range(low, low + size)):
            return low, low + size - 1
    pytest.skip("no quiet port window below 9000")


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range(tmp_path):
    allocator = PortAllocator(lock_dir=tmp_path)
    ports = allocator.allocate(20)
    assert len(set(ports)) == 20
    low, high = default_port_range()
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(low <= p <= high < ephemeral_low for p in ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    allocator.release_all()
    assert allocator.held == frozenset()


def test_two_allocators_in_one_process_never_share_a_port(tmp_path):
    window = _quiet_window(10)
    first = PortAllocator(window, lock_dir=tmp_path)
    second = PortAllocator(window, lock_dir=tmp_path)
    mine = first.allocate(6)
    theirs = second.allocate(4)
    assert not set(mine) & set(theirs)
    with pytest.raises(PortsExhausted):
        second.port()
    first.release(mine[0])
    assert second.port() == mine[0]


def test_another_process_gets_only_the_ports_left(tmp_path):
    window = _quiet_window(12)
    allocator = PortAllocator(window, lock_dir=tmp_path)
    mine = set(allocator.allocate(8))
    child = (
        "import json, sys\n"
        "from tests.support.ports import PortAllocator, PortsExhausted\n"
        f"a = PortAllocator({window!r}, lock_dir={str(tmp_path)!r})\n"
        "got = a.allocate(4)\n"
        "try:\n    a.port(); extra = True\nexcept PortsExhausted:\n    extra = False\n"
        "print(json.dumps([got, extra]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    theirs, extra = json.loads(done.stdout)
    assert not mine & set(theirs)
    assert len(set(theirs)) == 4 and extra is False
    # The child has exited, so its locks are gone and its ports come back.
    assert set(allocator.allocate(4)) == set(theirs)


def test_a_port_in_use_is_skipped(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        allocator = PortAllocator((port, port), lock_dir=tmp_path)
        with pytest.raises(PortsExhausted):
            allocator.port()
    assert allocator.port() == port


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        PortAllocator((2000, 1000), lock_dir=tmp_path)
    with pytest.raises(ValueError):
        PortAllocator(lock_dir=tmp_path).allocate(0)
