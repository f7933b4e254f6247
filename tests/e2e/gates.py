"""The proxies under test behind one face: Debian's nginx and the ``mailgate`` binary
(``tests.support.proxy.MailProxy``), and mailgate's ``MailProxy`` embedded in the test
process on a thread of its own (``EmbeddedGate``).

Every gate offers what the scenarios use: ``start(body, main="")``, ``address(name)``,
``port(name)``, ``log_lines(level)``, ``problems()``, ``tolerate_problems``,
``worker_pids()`` and ``stop()``.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from tests.proxy.conftest import EmbeddedProxy
from tests.support.procs import wait_until
from tests.support.proxy import MailProxy

__all__ = [
    "LOG_LINE", "EmbeddedGate", "log_messages", "raw_log", "rss_bytes", "wait_for_log",
    "worker_pids",
]

LOG_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (\*\d+ )?(.*)$")
"""An error_log line: level, ``*N `` of a session line (else None), message."""


class EmbeddedGate(EmbeddedProxy):
    """mailgate's ``MailProxy`` in this process, with the ``MailProxy`` runner's face.

    Exceptions that reach the event loop's handler are kept: they are the embedded
    equivalent of a traceback in a worker's log and count as problems.
    """

    name = "embedded"

    def __init__(self, directory: Path, ports, values: dict):
        self.loop_errors: list[str] = []
        self.tolerate_problems = False
        super().__init__(directory, ports, dict(values, prefix=directory),
                         loop_factory=self._new_loop)

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()

        def record(loop, context):
            exc = context.get("exception")
            self.loop_errors.append("{}: {!r}".format(context.get("message"), exc))

        loop.set_exception_handler(record)
        return loop

    def port(self, name: str) -> int:
        return self._port(name)

    def start(self, body: str, *, main: str = "", auth=None) -> EmbeddedGate:
        super().start(body, main=main, auth=auth)
        return self

    def error_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self, level: str | None = None) -> list[str]:
        lines = self.error_log().splitlines()
        if level is None:
            return lines
        return [l for l in lines if (m := LOG_LINE.match(l)) and m.group(1) == level]

    def problems(self) -> list[str]:
        return [
            line for line in self.error_log().splitlines()
            if "Traceback (most recent call last)" in line
            or ((m := LOG_LINE.match(line)) and m.group(1) in ("alert", "emerg"))
        ] + ["event loop: " + e for e in self.loop_errors]

    def worker_pids(self) -> list[int]:
        return [os.getpid()]

    def stop(self) -> None:
        if self.thread.is_alive():
            super().stop()
        for port in self.named_ports.values():
            self.ports.release(port)
        self.named_ports.clear()


def worker_pids(gate) -> list[int]:
    """The processes that serve sessions: nginx's or mailgate's workers (the master's
    children), or this process for the embedded proxy."""
    if isinstance(gate, EmbeddedGate):
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
    path = gate.log_path if isinstance(gate, EmbeddedGate) else gate.error_log_path
    return path.read_bytes().decode("utf-8", "replace") if path.exists() else ""


def wait_for_log(gate, text: str, level: str | None = None, timeout: float = 3.0) -> list[str]:
    """Wait until a log message (see ``log_messages``) contains ``text``; return the
    messages; fail with the whole log when it does not come."""
    if not wait_until(lambda: any(text in m for m in log_messages(gate, level)), timeout):
        raise AssertionError(f"{gate.name}: no {level or ''} log line with {text!r} in:\n"
                             + gate.error_log())
    return log_messages(gate, level)
