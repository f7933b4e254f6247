"""What /proc tells about a running proxy process: its open descriptors and the event
loop it runs (used by the fault tests and bench/soak.py)."""

from __future__ import annotations

import os

from .procs import wait_until

__all__ = ["event_loop", "fd_count", "fd_links"]


def fd_links(pid: int) -> list[str]:
    """What each open descriptor of ``pid`` points at (``socket:[123]``, a path ...)."""
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue  # closed meanwhile
    return links


def fd_count(pid: int) -> int:
    """How many descriptors ``pid`` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def event_loop(pid: int, timeout: float = 5.0) -> str | None:
    """The event loop a mailgate worker runs, ``uvloop`` or ``asyncio``, once it has made
    it (None if it has not within ``timeout``).

    Told by its descriptors: both loops make a unix socket pair as they start (asyncio's
    self-pipe, uvloop's signal wake-up, after its own descriptors); libuv also wakes its
    loop through an eventfd (``uv_async_send``), asyncio never makes one.
    """
    links: list[str] = []

    def made() -> bool:
        links[:] = fd_links(pid)
        with open("/proc/net/unix") as table:
            unix = {f"socket:[{line.split()[6]}]" for line in list(table)[1:]}
        return sum(link in unix for link in links) >= 2

    if not wait_until(made, timeout):
        return None
    return "uvloop" if "anon_inode:[eventfd]" in links else "asyncio"
