"""Target ``readers``: the IMAP, POP3 and SMTP command readers, compiled against pure Python.

The readers frame client commands inside the command buffer: IMAP tags, atoms, quoted
strings with backslash escapes, synchronizing and non-synchronizing literals; POP3 and
SMTP words and arguments; the SASL continuation lines that follow AUTH/AUTHENTICATE.
The machines target reaches them through the protocol handlers; this one drives them
directly, as the machines do, with arbitrary bytes in arbitrary pieces.

Input: byte 0 selects the reader (bits 0-1: IMAP, POP3, SMTP, SMTP) and the buffer's
capacity (bits 2-4); then steps (:mod:`tests.fuzz.common`): 2 the chunk is written through
``get_buffer()``/``buffer_updated()``, 3-7 through ``write()``, and the reader parses
until it needs more bytes, as ``ngx_mail_read_command`` does; 0 and 1 choose what the
protocol handler does after the next complete command, as the machines' handlers do
at that point only: 0 ``reader.reset_state()`` (e.g. SMTP AUTH without a mechanism),
1 ``buffer.reset()`` and ``reset_state()``, dropping the rest (STARTTLS).  The buffer
goes back to its start when drained after a command (IMAP: when no literal or SASL
exchange is open); a full buffer without a command (too long) closes the session, and
the rest of the input goes to a new one.

Contract: ``parse()`` returns AGAIN, OK, INVALID or (IMAP) LITERAL and never raises;
every result but AGAIN consumes at least one byte (no command loops forever); the
compiled reader (``pyx/_reader.pxi``, not instrumented: the pure-Python reference gives
the coverage) agrees with the reference after every call on the result, the command,
the arguments, the buffer marks and the reader's state, and on the command text of a
command (as SMTP reads MAIL and RCPT; a SASL line after AUTH has none: there the
compiled reader's marks may point before the buffer's start, its text is undefined).
"""

from __future__ import annotations

from mailgate.protocol import _impl
from mailgate.protocol._codes import AGAIN, INVALID, LITERAL, OK
from mailgate.protocol._reader import S_ARGUMENT

from tests.fuzz.common import steps

READERS = ("ImapReader", "Pop3Reader", "SmtpReader")
CAPACITIES = (1, 8, 16, 24, 64, 128, 512, 4096)
_RESULTS = (AGAIN, OK, INVALID, LITERAL)

DICTIONARY = (
    b"a1 ", b"LOGIN", b"LOGOUT", b"AUTHENTICATE", b"CAPABILITY", b"STARTTLS", b"NOOP",
    b"USER", b"PASS", b"APOP", b"CAPA", b"AUTH", b"STLS", b"QUIT", b"HELO", b"EHLO",
    b"MAIL", b"RCPT", b"RSET", b"VRFY", b"EXPN", b"HELP", b"{0}\r\n", b"{5}\r\n",
    b"{18446744073709551615}", b"{18446744073709551616}", b"{1+}\r\n", b"\"", b"\\\"",
    b"\\\\", b"\r\n", b"\n", b"\r", b" ",
)


class _Session:
    """One reader over its buffer, driven as a machine drives it."""

    def __init__(self, kind: str, capacity: int, implementation: str) -> None:
        self.kind = kind
        self.impl = _impl.get(implementation)
        self.connect(capacity)
        self.imap = kind == "ImapReader"
        self.after_ok: list[int] = []  # what the handler does after the next commands
        # whether the command being read began at a command start, not as a SASL line
        # after AUTH: only such a command has a command_text() (SMTP's MAIL and RCPT)
        self.began = False

    def connect(self, capacity: int) -> None:
        """A new connection: a new command buffer and reader."""
        self.buffer = self.impl.RelayBuffer(capacity)
        self.reader = getattr(self.impl, self.kind)(self.buffer)

    def snapshot(self, rc: int | None) -> tuple:
        """What the machines read from the reader (and its buffer) after a call."""
        reader, buffer = self.reader, self.buffer
        state = (rc, reader.state, reader.in_progress, buffer.pos, buffer.last, buffer.full)
        if rc == OK:
            state += (reader.command, tuple(reader.args))
            if self.began:
                state += (reader.command_text(),)
        if self.imap:
            state += (reader.tag, reader.literal_rejected, reader.literal_len)
        return state

    def parse_all(self) -> list[tuple]:
        """Parse until more bytes are needed, with the handler's work after each command."""
        reader, buffer = self.reader, self.buffer
        out = []
        # each result but AGAIN consumes a byte: at most capacity + 1 calls
        for _ in range(buffer.capacity + 1):
            if not reader.in_progress:
                self.began = True
            elif reader.state == S_ARGUMENT and reader.arg_start < 0:
                self.began = False  # a SASL line after AUTH/AUTHENTICATE
            rc = reader.parse()
            assert rc in _RESULTS, rc
            out.append(self.snapshot(rc))
            if rc == AGAIN:
                if buffer.full:
                    # too long: the machine closes the session; the client connects again
                    self.connect(buffer.capacity)
                return out
            if rc == OK and self.after_ok:
                if self.after_ok.pop(0) == 1:
                    buffer.reset()
                    reader.reset_state()
                    return out
                reader.reset_state()
            if rc != LITERAL and not (self.imap and reader.in_progress):
                buffer.reset_if_drained()
        raise AssertionError("parse() returned a result without consuming a byte")

    def run(self, data: bytes) -> list[tuple]:
        """The snapshots of a whole session on ``data`` (see the module docstring)."""
        out = [self.snapshot(None)]
        for op, chunk in steps(data, 1):
            if op < 2:
                self.after_ok.append(op)
                continue
            buffer = self.buffer
            free = buffer.free
            if op == 2:
                view = buffer.get_buffer()
                n = min(len(view), len(chunk))
                view[:n] = chunk[:n]
                buffer.buffer_updated(n)
            else:
                n = buffer.write(chunk)
            assert n == min(len(chunk), free), "the buffer took the wrong number of bytes"
            out += self.parse_all()
        return out


def one_input(data: bytes) -> None:
    """Run ``data`` on every implementation; the reader sessions must be identical."""
    if not data:
        return
    kind = READERS[min(data[0] & 3, 2)]
    capacity = CAPACITIES[(data[0] >> 2) % len(CAPACITIES)]
    names = _impl.available()
    sessions = [_Session(kind, capacity, name).run(data) for name in names]
    for name, other in zip(names[1:], sessions[1:]):
        for i, (want, got) in enumerate(zip(sessions[0], other)):
            assert want == got, f"{kind} call {i}: {names[0]} {want} != {name} {got}"
        assert len(other) == len(sessions[0])
