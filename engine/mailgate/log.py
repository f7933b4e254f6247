"""nginx-format error logging: levels, the line format, and the destinations.

A line is ``YYYY/MM/DD HH:MM:SS [level] PID#TID: [*CONN ]message`` and is written with
one write() per line, so lines from several processes never interleave.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

__all__ = ["LEVELS", "SYSLOG_FACILITIES", "format_line", "level_number"]

# nginx's levels, most severe first; a destination logs its level and everything above.
LEVELS = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")
_LEVEL_NUMBER = {name: i for i, name in enumerate(LEVELS)}

SYSLOG_FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock",
    "authpriv", "ftp", "ntp", "audit", "alert", "cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)


def level_number(level: str) -> int:
    """0 for emerg ... 7 for debug (also the syslog severity of that level)."""
    return _LEVEL_NUMBER[level]


def format_line(level: str, message: str, *, conn: int | None = None, when: float | None = None) -> str:
    """One error_log line, newline included."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(when))
    pid = os.getpid()
    tid = threading.get_native_id()
    prefix = "*%d " % conn if conn is not None else ""
    return "%s [%s] %d#%d: %s%s\n" % (stamp, level, pid, tid, prefix, message)


def write_stderr(text: str, stream: TextIO | None = None) -> None:
    """Write one whole line to stderr (one write call)."""
    stream = stream or sys.stderr
    stream.write(text)
    stream.flush()
