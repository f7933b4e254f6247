"""The proxies under test behind one face: Debian's nginx and the ``mailgate`` binary
(``tests.support.proxy.MailProxy``), and mailgate's ``MailProxy`` embedded in the test
process on a thread of its own (``tests.support.embedded.EmbeddedProxy``), and what the
scenarios read from any of them.

Every gate offers what the scenarios use: ``start(body, main="")``, ``address(name)``,
``port(name)``, ``log_lines(level)``, ``problems()``, ``tolerate_problems``,
``error_log_path`` and ``stop()``.
"""

from __future__ import annotations

import os
import re

from tests.support.embedded import EmbeddedProxy
from tests.support.procs import wait_until
from tests.support.proxy import MailProxy

__all__ = ["LOG_LINE", "log_messages", "raw_log", "rss_bytes", "wait_for_log", "worker_pids"]

LOG_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (\*\d+ )?(.*)$")
"""An error_log line: level, ``*N `` of a session line (else None), message."""


def worker_pids(gate) -> list[int]:
    """The processes that serve sessions: nginx's or mailgate's workers (the master's
    children), or this process for the embedded proxy."""
    if isinstance(gate, EmbeddedProxy):
        return gate.worker_pids()
    assert isinstance(gate, MailProxy)
    master = gate.master_pid
    children: list[int] = []
    for task in os.listdir(f"/proc/{master}/task"):
        with open(f"/proc/{master}/task/{task}/children") as f:
            children += [int(pid) for pid in f.read().split()]
    return children


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def log_messages(gate, level: str | None = None) -> list[str]:
    """Session log lines without time, level, pid and connection number:
    ``client login failed: "x" while in http auth state, client: ..., server: ...``."""
    return [m.group(3) for line in gate.log_lines(level) if (m := LOG_LINE.match(line))]


def raw_log(gate) -> str:
    """The error log as written (``error_log()`` reads it with universal newlines,
    which turns a quoted CR LF into LF)."""
    path = gate.error_log_path
    return path.read_bytes().decode("utf-8", "replace") if path.exists() else ""


def wait_for_log(gate, text: str, level: str | None = None, timeout: float = 3.0) -> list[str]:
    """Wait until a log message (see ``log_messages``) contains ``text``; return the
    messages; fail with the whole log when it does not come."""
    if not wait_until(lambda: any(text in m for m in log_messages(gate, level)), timeout):
        raise AssertionError(f"{gate.name}: no {level or ''} log line with {text!r} in:\n"
                             + gate.error_log())
    return log_messages(gate, level)
