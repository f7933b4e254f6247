"""Free loopback ports that stay free until the test that asked for them is done.

Binding port 0 gives a free port, but the port is free only until the probe socket
closes: a parallel test run (or any outgoing connection, which draws its source port
from the same ephemeral range) may take it before nginx, Dovecot or the SMTP backend
binds it.  So ports here are drawn from *below* the kernel's ephemeral range, where no
outgoing connection lands, and each one is claimed with an exclusive lock on a file in
a directory shared by every test process of this machine.  The lock lives as long as
the allocation, so concurrent pytest runs (and xdist workers) never hand out the same
port twice; a crashed run releases its locks with its process.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path

__all__ = ["NamedPorts", "PortAllocator", "PortsExhausted", "default_port_range"]

_LOCK_DIR = Path(tempfile.gettempdir()) / "mailgate-test-ports"
_FALLBACK_RANGE = (20000, 32767)


class PortsExhausted(RuntimeError):
    """No free port is left in the allocator's range."""


def default_port_range() -> tuple[int, int]:
    """The ports below the kernel's ephemeral range, above the well-known ones."""
    try:
        low, _high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return _FALLBACK_RANGE
    top = int(low) - 1
    if top - 10000 < 1024:
        return _FALLBACK_RANGE
    return (10000, top)


def _bindable(port: int, host: str) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Without SO_REUSEADDR a port still in TIME_WAIT is reported busy: the
        # servers we start set SO_REUSEADDR themselves, but a busy port is skipped
        # rather than risked.
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out free TCP ports on loopback, never the same one to two holders.

    Example::

        ports = PortAllocator()
        imap, pop3 = ports.allocate(2)
        ...
        ports.release(imap, pop3)      # or ports.release_all()
    """

    def __init__(
        self,
        port_range: tuple[int, int] | None = None,
        *,
        hosts: tuple[str, ...] = ("127.0.0.1",),
        lock_dir: Path | str | None = None,
    ) -> None:
        self.low, self.high = port_range or default_port_range()
        if not 0 < self.low <= self.high < 65536:
            raise ValueError(f"bad port range {self.low}-{self.high}")
        self.hosts = hosts
        self.lock_dir = Path(lock_dir) if lock_dir else _LOCK_DIR
        self.lock_dir.mkdir(mode=0o1777, parents=True, exist_ok=True)
        self._held: dict[int, int] = {}  # port -> fd of its lock file
        self._mutex = threading.Lock()

    def allocate(self, count: int = 1) -> list[int]:
        """Claim ``count`` distinct free ports; they stay claimed until released."""
        if count < 1:
            raise ValueError("count must be at least 1")
        got: list[int] = []
        try:
            for _ in range(count):
                got.append(self._claim_one())
        except BaseException:
            self.release(*got)
            raise
        return got

    def port(self) -> int:
        """Claim one free port."""
        return self.allocate(1)[0]

    def _claim_one(self) -> int:
        size = self.high - self.low + 1
        start = random.randrange(size)
        with self._mutex:
            for step in range(size):
                port = self.low + (start + step) % size
                if port in self._held:
                    continue
                fd = self._try_lock(port)
                if fd is None:
                    continue
                if all(_bindable(port, host) for host in self.hosts):
                    self._held[port] = fd
                    return port
                os.close(fd)
        raise PortsExhausted(f"no free port in {self.low}-{self.high}")

    def _try_lock(self, port: int) -> int | None:
        fd = os.open(self.lock_dir / f"{port}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                return None
            raise
        return fd

    def release(self, *ports: int) -> None:
        """Give ports back (unknown ports are ignored)."""
        with self._mutex:
            for port in ports:
                fd = self._held.pop(port, None)
                if fd is not None:
                    os.close(fd)  # closing the descriptor drops the flock

    def release_all(self) -> None:
        """Give back every port this allocator holds."""
        self.release(*list(self._held))

    @property
    def held(self) -> frozenset[int]:
        """The ports currently claimed by this allocator."""
        return frozenset(self._held)


class NamedPorts:
    """For a server a test configures with ``${port_NAME}`` placeholders: one port of
    ``_ports`` (a ``PortAllocator``) per name, kept in ``_port_map``, on ``host``."""

    host: str
    _ports: PortAllocator
    _port_map: dict[str, int]

    def port(self, name: str) -> int:
        """The port allocated for ``${port_NAME}`` (allocating it if new)."""
        if name not in self._port_map:
            self._port_map[name] = self._ports.port()
        return self._port_map[name]

    def address(self, name: str) -> tuple[str, int]:
        """``(host, port)`` of ``${port_NAME}``."""
        return self.host, self.port(name)
