"""The access log: one line per finished session, in a ``log_format``, to files or syslog.

Lines are made as nginx's stream log module makes them (src/stream/ngx_stream_log_module.c):
a variable's value is escaped by the format's ``escape=`` — ``default``: ``"``, ``\\``,
control bytes and bytes from 0x7F on as ``\\xXX`` (ngx_stream_log_escape()); ``json``:
nginx's ngx_escape_json(); ``none``: as it is — and a value that is not there is
``-`` (empty with ``json``).  A file is opened once per path in the process's
``LogFiles``, so ``USR1`` reopens it with the error logs; with ``buffer=`` lines are
held until the buffer is full, ``flush=`` time has passed, the logs are reopened or
the proxy stops.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable

from mailgate.config.model import AccessLogTarget, LogFormat
from mailgate.log import LogFiles, syslog_destination
from mailgate.proxy.record import SessionRecord, getter

__all__ = ["AccessLog", "LineFormat", "escape_default", "escape_json"]

_DEFAULT_ESCAPED = re.compile(rb'[\x00-\x1f"\\\x7f-\xff]')
_JSON_ESCAPED = re.compile(rb'[\x00-\x1f"\\]')
_JSON_SHORT = {0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t", 0x08: b"\\b", 0x0C: b"\\f"}


def escape_default(data: bytes) -> bytes:
    """ngx_stream_log_escape(): ``"``, ``\\``, control bytes and 0x7F-0xFF as ``\\xXX``."""
    return _DEFAULT_ESCAPED.sub(lambda m: b"\\x%02X" % m.group()[0], data)


def _json_byte(match: re.Match) -> bytes:
    byte = match.group()[0]
    if byte in (0x22, 0x5C):
        return b"\\" + match.group()
    return _JSON_SHORT.get(byte) or b"\\u%04X" % byte


def escape_json(data: bytes) -> bytes:
    """ngx_escape_json(): ``"`` and ``\\`` escaped, control bytes as ``\\n`` ... or
    ``\\u00XX``; other bytes (UTF-8) as they are."""
    return _JSON_ESCAPED.sub(_json_byte, data)


_ESCAPE = {"default": escape_default, "json": escape_json, "none": lambda data: data}


class LineFormat:
    """A ``log_format`` made ready to write lines: literal bytes and value getters."""

    __slots__ = ("escape", "missing", "parts")

    def __init__(self, log_format: LogFormat):
        self.escape = _ESCAPE[log_format.escape]
        self.missing = b"" if log_format.escape == "json" else b"-"
        self.parts = tuple(
            (None, getter(text)) if is_variable else (text.encode("utf-8", "surrogateescape"), None)
            for is_variable, text in log_format.parts)

    def line(self, record: SessionRecord) -> bytes:
        """The line (with its line feed) for ``record``."""
        escape, missing = self.escape, self.missing
        out = []
        for literal, get in self.parts:
            if get is None:
                out.append(literal)
            else:
                data = get(record)
                out.append(missing if data is None else escape(data))
        out.append(b"\n")
        return b"".join(out)


class _FileWriter:
    """Lines for one file, written at once or held in a buffer of ``size`` bytes."""

    def __init__(self, files: LogFiles, target: AccessLogTarget):
        self.file = files.get(target.path)
        self.size = target.buffer
        self.flush_after = target.flush
        self.held: list[bytes] = []
        self.held_bytes = 0
        self.timer: asyncio.TimerHandle | None = None

    def write(self, line: bytes) -> None:
        if not self.size:
            self.file.write(line)
            return
        if self.held_bytes + len(line) > self.size:
            self.flush()
        self.held.append(line)
        self.held_bytes += len(line)
        if self.flush_after is not None and self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.flush_after, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.held:
            self.file.write(b"".join(self.held))
            self.held.clear()
            self.held_bytes = 0


class _SyslogWriter:
    def __init__(self, target: AccessLogTarget, hostname: str | None):
        self.destination = syslog_destination(target.syslog, hostname)
        self.severity = target.syslog.severity or "info"

    def write(self, line: bytes) -> None:
        self.destination.emit(self.severity, line.decode("utf-8", "surrogateescape"))

    def flush(self) -> None:
        pass


class AccessLog:
    """The ``access_log``s of one server: each finished session's line to each."""

    def __init__(self, targets: Iterable[AccessLogTarget], files: LogFiles,
                 writers: dict, hostname: str | None = None):
        # writers are shared by path across servers, so that one buffer holds a file's lines
        self.outputs = []
        for target in targets:
            if target.syslog is not None:
                writer = _SyslogWriter(target, hostname)
            else:
                writer = writers.get(target.path)
                if writer is None:
                    writer = writers[target.path] = _FileWriter(files, target)
            self.outputs.append((LineFormat(target.format), writer))

    def __bool__(self) -> bool:
        return bool(self.outputs)

    def write(self, record: SessionRecord) -> None:
        """``record``'s line in each access log's format."""
        for line_format, writer in self.outputs:
            writer.write(line_format.line(record))
