"""nginx-format error logging: levels, the line format, and the destinations.

A line is ``YYYY/MM/DD HH:MM:SS [level] PID#TID: [*CONN ]message`` and is written with
one ``write()`` per line on a file opened in append mode, so lines from several
processes never interleave.  A destination (``error_log`` directive) has its own
level; a chain of destinations is an ``ErrorLog``.  Syslog lines follow nginx
(RFC 3164 header, then the whole error_log line), sent over UDP or a unix socket.
Session lines get nginx's context (`` while ACTION, client: …, server: …``) from
``SessionContext``.
"""

from __future__ import annotations

import collections
import os
import socket
import sys
import threading
import time
from typing import Iterable

from mailgate.inet import sockaddr_family

__all__ = [
    "LEVELS",
    "SYSLOG_FACILITIES",
    "ErrorLog",
    "LogFiles",
    "SessionContext",
    "format_line",
    "level_number",
    "printable",
    "syslog_destination",
    "write_stderr",
]

# nginx's levels, most severe first; a destination logs its level and everything above.
LEVELS = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")
_LEVEL_NUMBER = {name: i for i, name in enumerate(LEVELS)}

SYSLOG_FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock",
    "authpriv", "ftp", "ntp", "audit", "alert", "cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
_FACILITY_NUMBER = {name: i for i, name in enumerate(SYSLOG_FACILITIES)}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAX_LINE = 2048  # NGX_MAX_ERROR_STR, the line feed included: longer lines are cut
SYSLOG_MAX = 4096  # NGX_SYSLOG_MAX_STR


def level_number(level: str) -> int:
    """0 for emerg ... 7 for debug (also the syslog severity of that level)."""
    return _LEVEL_NUMBER[level]


def format_line(level: str, message: str, *, conn: int | None = None, when: float | None = None) -> str:
    """One error_log line, newline included."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(when))
    prefix = "*%d " % conn if conn is not None else ""
    line = "%s [%s] %d#%d: %s%s" % (stamp, level, os.getpid(), threading.get_native_id(), prefix, message)
    return line[: MAX_LINE - 1] + "\n"


def write_stderr(text: str) -> None:
    """Write one whole line to stderr (one write call); never raises."""
    try:
        os.write(sys.stderr.fileno(), text.encode("utf-8", "surrogateescape"))
        return
    except (OSError, ValueError, AttributeError):  # no descriptor: a captured or replaced stderr
        pass
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # stderr closed: nowhere left to write
        pass


class _File:
    """An error log file, opened once per path and shared by every directive naming it."""

    def __init__(self, path: str):
        self.path = path
        self.fd = -1
        self.open()

    def open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        old, self.fd = self.fd, fd
        if old >= 0:
            os.close(old)

    def write(self, data: bytes) -> None:
        try:
            os.write(self.fd, data)
        except OSError:
            pass  # a full disk must not stop the proxy; nginx ignores the error too

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class LogFiles:
    """The open error log files of a process, by path (USR1 reopens them all)."""

    def __init__(self) -> None:
        self._files: dict[str, _File] = {}

    def get(self, path: str) -> _File:
        file = self._files.get(path)
        if file is None:
            file = self._files[path] = _File(path)
        return file

    def reopen(self) -> None:
        for file in self._files.values():
            try:
                file.open()
            except OSError:
                pass  # keep writing to the old file, as nginx does when reopen fails

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()


class _Destination:
    level = 0

    def emit(self, level: str, line: str) -> None:  # pragma: no cover - each kind defines it
        raise NotImplementedError


class _FileDestination(_Destination):
    def __init__(self, file: _File, level: int):
        self.file, self.level = file, level

    def emit(self, level: str, line: str) -> None:
        self.file.write(line.encode("utf-8", "surrogateescape"))


class _StderrDestination(_Destination):
    def __init__(self, level: int):
        self.level = level

    def emit(self, level: str, line: str) -> None:
        write_stderr(line)


class _MemoryDestination(_Destination):
    """``memory:SIZE``: the most recent lines, at most SIZE bytes, kept in the process."""

    def __init__(self, size: int, level: int):
        self.level, self.size = level, size
        self.lines: collections.deque[str] = collections.deque()
        self.used = 0

    def emit(self, level: str, line: str) -> None:
        self.lines.append(line)
        self.used += len(line)
        while self.used > self.size and self.lines:
            self.used -= len(self.lines.popleft())


class _SyslogDestination(_Destination):
    def __init__(self, target, hostname: str, level: int):
        self.level = level
        self.facility = _FACILITY_NUMBER[target.facility]
        self.tag = target.tag
        self.hostname = None if target.nohostname else hostname
        self.address = target.address
        self.sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self.sock is None:
            sock = socket.socket(sockaddr_family(self.address), socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.connect(self.address)
            self.sock = sock
        return self.sock

    def emit(self, level: str, line: str) -> None:
        now = time.localtime()
        stamp = "%s %2d %02d:%02d:%02d" % (_MONTHS[now.tm_mon - 1], now.tm_mday, now.tm_hour,
                                           now.tm_min, now.tm_sec)
        pri = self.facility * 8 + _LEVEL_NUMBER[level]
        host = " %s" % self.hostname if self.hostname else ""
        message = "<%d>%s%s %s: %s" % (pri, stamp, host, self.tag, line.rstrip("\n"))
        try:
            self._socket().send(message.encode("utf-8", "surrogateescape")[:SYSLOG_MAX])
        except OSError:
            if self.sock is not None:  # a restarted syslog daemon: reconnect next time
                self.sock.close()
                self.sock = None


def syslog_destination(target, hostname: str | None = None) -> _SyslogDestination:
    """A syslog server of a ``syslog:`` target (``LogTarget``), for the access log."""
    return _SyslogDestination(target, hostname or socket.gethostname().lower(),
                              _LEVEL_NUMBER["debug"])


class ErrorLog:
    """A chain of ``error_log`` destinations; each line goes to every one whose level admits it."""

    def __init__(self, targets: Iterable, files: LogFiles, *, hostname: str | None = None):
        hostname = hostname or socket.gethostname().lower()
        self.destinations: list[_Destination] = []
        for target in targets:
            level = _LEVEL_NUMBER[target.level]
            if target.kind == "file":
                self.destinations.append(_FileDestination(files.get(target.path), level))
            elif target.kind == "stderr":
                self.destinations.append(_StderrDestination(level))
            elif target.kind == "memory":
                self.destinations.append(_MemoryDestination(target.size, level))
            else:
                self.destinations.append(_SyslogDestination(target, hostname, level))
        self.max_level = max((d.level for d in self.destinations), default=-1)
        #: whether any destination takes debug lines: the one test a debug line's call
        #: site makes before it formats anything (nginx's ngx_log_debug macros test
        #: log->log_level first too)
        self.debug = self.max_level >= _LEVEL_NUMBER["debug"]

    def enabled(self, level: str) -> bool:
        """Whether any destination takes lines of this level (test before formatting)."""
        return _LEVEL_NUMBER[level] <= self.max_level

    def log(self, level: str, message: str, conn: int | None = None) -> None:
        number = _LEVEL_NUMBER[level]
        if number > self.max_level:
            return
        line = format_line(level, message, conn=conn)
        for destination in self.destinations:
            if number <= destination.level:
                destination.emit(level, line)

    def memory_lines(self) -> list[str]:
        """The lines kept by ``memory:`` destinations (for embedders and tests)."""
        return [line for d in self.destinations if isinstance(d, _MemoryDestination) for line in d.lines]


def printable(data: bytes) -> str:
    """Client-supplied bytes for a log line: control bytes as ``\\xNN`` so that no client
    can forge or split log lines (nginx prints logins raw; docs/differences.md#logging)."""
    text = data.decode("utf-8", "surrogateescape")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "\\x%02x" % (ord(c) & 0xFF) for c in text)


class SessionContext:
    """nginx's ``ngx_mail_log_error``: the context appended to a session's log lines."""

    __slots__ = ("number", "client", "server", "starttls", "login", "upstream")

    def __init__(self, number: int, client: str, server: str):
        self.number = number
        self.client = client
        self.server = server
        self.starttls = False
        self.login: bytes = b""
        self.upstream: str | None = None

    def describe(self, message: str, action: str = "") -> str:
        """``message`` with `` while ACTION, client: C, server: S, login: "L", upstream: U``."""
        parts = [message]
        if action:
            parts.append(" while %s" % action)
        parts.append(", client: %s%s, server: %s" % (
            self.client, " using starttls" if self.starttls else "", self.server))
        if self.login:
            parts.append(', login: "%s"' % printable(self.login))
        if self.upstream:
            parts.append(", upstream: %s" % self.upstream)
        return "".join(parts)
