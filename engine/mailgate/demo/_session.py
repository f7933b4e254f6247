"""What the demo server's three protocol sessions share.

A session is sans-I/O: :meth:`Session.start` gives the greeting,
:meth:`Session.receive_data` takes client bytes and gives the reply bytes,
:attr:`Session.closed` says the connection must be closed once those are written.
The asyncio layer (``server.py``) only moves bytes and runs the idle timer.

A session stops working through pipelined commands once it has about
:data:`OUTPUT_BUDGET` bytes of replies to hand out (:attr:`Session.blocked`); the
caller writes them and calls :meth:`Session.resume` when the client has read
enough, so a client that sends and never reads cannot make the server buffer
without bound.
"""

from __future__ import annotations

import binascii
import logging
from dataclasses import dataclass

from mailgate.demo.store import Mailstore
from mailgate.protocol.sasl import Credentials, SaslRejected, decode_plain

log = logging.getLogger("mailgate.demo")

# why a session says goodbye unasked (each protocol words it its own way)
TIMEOUT = "timeout"
TOO_MANY_ERRORS = "errors"
SHUTDOWN = "shutdown"
BUSY = "busy"
INTERNAL_ERROR = "internal"


@dataclass(frozen=True)
class Limits:
    """Bounds on what a client may make the demo server hold or wait for."""

    #: longest command line (IMAP: one line of a command, literals apart), bytes
    line_length: int = 8192
    #: largest message (SMTP DATA, IMAP APPEND) and largest IMAP literal, bytes
    message_size: int = 10 * 1024 * 1024
    #: seconds without client input before the server says goodbye and closes
    #: (RFC 3501 5.4 asks IMAP servers for at least 30 minutes)
    idle_timeout: float = 1800.0
    #: protocol errors in one session before the server closes it
    max_errors: int = 20
    #: recipients in one SMTP transaction
    max_recipients: int = 100
    #: open connections per protocol; more are greeted with a goodbye and closed
    max_connections: int = 256

    def __post_init__(self) -> None:
        for name in ("line_length", "message_size", "max_errors", "max_recipients",
                     "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be at least 1")
        if self.line_length < 512:
            raise ValueError("Limits.line_length must be at least 512 (RFC 5321 4.5.3.1.4)")
        if not self.idle_timeout > 0:
            raise ValueError("Limits.idle_timeout must be positive")


#: reply bytes after which a session stops taking commands until resumed
OUTPUT_BUDGET = 256 * 1024

#: :meth:`LineReader.read_line` found a line longer than the limit
TOO_LONG = object()
#: :meth:`LineReader.read_line` reached the end of a line that was too long
SKIPPED = object()


class LineReader:
    """Bytes from the client, taken back a line (up to LF) or a count at a time.

    A line over the limit is reported once (:data:`TOO_LONG`) and then dropped up
    to its LF, which is reported as :data:`SKIPPED` (``skipped_crlf`` tells how it
    ended), so nothing ever holds more than the limit.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._skipping = False
        self._skip_cr = False
        self._skip_ended = False
        self.skipped_crlf = False

    def feed(self, data: bytes) -> None:
        """Add client bytes; drop what has been consumed."""
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    @property
    def pending(self) -> int:
        """Bytes received and not yet taken."""
        return len(self._buf) - self._pos

    def read_line(self, limit: int):
        """The next line with its LF; None if incomplete; TOO_LONG / SKIPPED (see above).

        ``limit`` counts the line's bytes without its CRLF or LF.
        """
        if self._skip_ended:
            self._skip_ended = False
            return SKIPPED
        buf, pos = self._buf, self._pos
        lf = buf.find(b"\n", pos)
        if self._skipping:
            if lf < 0:
                if len(buf) > pos:
                    self._skip_cr = buf[-1] == 0x0D
                self._pos = len(buf)
                return None
            self.skipped_crlf = buf[lf - 1] == 0x0D if lf > pos else self._skip_cr
            self._skipping = False
            self._pos = lf + 1
            return SKIPPED
        if lf < 0:
            if len(buf) - pos > limit + 1:      # + 1: a CR may be waiting for its LF
                self._skipping = True
                self._skip_cr = buf[-1] == 0x0D
                self._pos = len(buf)
                return TOO_LONG
            return None
        end = lf - 1 if lf > pos and buf[lf - 1] == 0x0D else lf
        if end - pos > limit:
            self.skipped_crlf = end != lf
            self._pos = lf + 1
            self._skip_ended = True
            return TOO_LONG
        self._pos = lf + 1
        return bytes(buf[pos:lf + 1])

    def read_bytes(self, n: int) -> bytes:
        """Up to ``n`` bytes, as many as have arrived."""
        pos = self._pos
        chunk = bytes(self._buf[pos:pos + n])
        self._pos = pos + len(chunk)
        return chunk


def strip_eol(line: bytes) -> bytes:
    """A line without its CRLF or LF."""
    if line.endswith(b"\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(b"\n") else line


def b64decode(data: bytes) -> bytes | None:
    """Strict base64 (a SASL response); None when it is not valid base64."""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def sasl_plain(response: bytes) -> Credentials | None:
    """The credentials in a SASL PLAIN response, or None if it is malformed."""
    try:
        return decode_plain(response, b64decode)
    except SaslRejected:
        return None


class Session:
    """Base of the IMAP, POP3 and SMTP sessions."""

    #: the protocol's name in log lines
    protocol = ""

    def __init__(self, store: Mailstore, *, hostname: str = "localhost",
                 limits: Limits | None = None, peer: str = "") -> None:
        self.store = store
        self.hostname = hostname.encode("ascii")
        self.limits = limits or Limits()
        self.peer = peer
        self.reader = LineReader()
        self.closed = False
        self.user: str | None = None
        self.errors = 0
        self.blocked = False
        self._out: list[bytes] = []
        self._out_size = 0

    # -- the caller's side ------------------------------------------------------

    def start(self) -> bytes:
        """The greeting."""
        self._greet()
        return self._take()

    def refuse(self) -> bytes:
        """Instead of the greeting when the server is full: the goodbye to send."""
        self.closed = True
        self._goodbye(BUSY)
        return self._take()

    def receive_data(self, data: bytes) -> bytes:
        """Take client bytes; return what to send back."""
        if self.closed:
            return b""
        self.reader.feed(data)
        return self.resume()

    def resume(self) -> bytes:
        """Go on with commands already received (after :attr:`blocked`)."""
        if self.closed:
            return b""
        try:
            self._process()
        except Exception:
            # a bug must never take the server down; the client gets an error and is let go
            log.exception("demo %s session: internal error, closing", self.protocol)
            self._out.clear()
            self._goodbye(INTERNAL_ERROR)
            self.closed = True
        self.blocked = not self.closed and self.reader.pending > 0 \
            and self._out_size >= OUTPUT_BUDGET
        return self._take()

    def timed_out(self) -> bytes:
        """The idle timer fired: the goodbye to send before closing."""
        self.closed = True
        self._goodbye(TIMEOUT)
        return self._take()

    def shutdown(self) -> bytes:
        """The server is closing: the goodbye to send before closing."""
        self.closed = True
        self._goodbye(SHUTDOWN)
        return self._take()

    # -- for the protocols --------------------------------------------------------

    def _send(self, *chunks: bytes) -> None:
        self._out.extend(chunks)
        self._out_size += sum(map(len, chunks))

    def _take(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        self._out_size = 0
        return out

    def _command_line(self) -> bytes | None:
        """POP3 and SMTP: the next command line without its line end, None until complete.

        An over-long line is answered by :meth:`_line_too_long` and dropped.
        """
        while not self.closed:
            line = self.reader.read_line(self.limits.line_length)
            if line is TOO_LONG:
                self._line_too_long()
            elif line is not SKIPPED:
                return None if line is None else strip_eol(line)
        return None

    def _line_too_long(self) -> None:
        raise NotImplementedError

    def _handler_for(self, line: bytes):
        """POP3 and SMTP: ``(NAME, its _cmd_NAME method or None, the rest of the line)``."""
        word, _, rest = line.partition(b" ")
        name = word.upper().decode("latin-1")
        handler = getattr(self, "_cmd_" + name, None) if name.isalpha() else None
        return name, handler, rest

    def _may_continue(self) -> bool:
        """Whether to take the next command: open, and not too much output waiting."""
        return not self.closed and self._out_size < OUTPUT_BUDGET

    def _error(self) -> bool:
        """Count a protocol error; True (and the session is closing) when too many."""
        self.errors += 1
        if self.errors >= self.limits.max_errors:
            self._goodbye(TOO_MANY_ERRORS)
            self.closed = True
            return True
        return False

    def _greet(self) -> None:
        raise NotImplementedError

    def _process(self) -> None:
        raise NotImplementedError

    def _goodbye(self, reason: str) -> None:
        """Send the protocol's last words for ``reason`` (TIMEOUT, SHUTDOWN, ...)."""
        raise NotImplementedError
