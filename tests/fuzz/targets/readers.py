"""Target ``readers``: the IMAP, POP3 and SMTP command readers, compiled against pure Python.

The readers frame client commands inside the command buffer: IMAP tags, atoms, quoted
strings with backslash escapes, synchronizing and non-synchronizing literals; POP3 and
SMTP words and arguments; the SASL continuation lines that follow AUTH/AUTHENTICATE.
The machines target reaches them through the protocol handlers; this one drives them
directly, as the machines do, with arbitrary bytes in arbitrary pieces.

Input: byte 0 selects the reader (its value mod 3) and the buffer's capacity (bits
2-4); then steps (:mod:`tests.fuzz.common`): 2 the chunk is written through
``get_buffer()``/``buffer_updated()``, 3-7 through ``write()``, and the reader parses
until it needs more bytes, as ``ngx_mail_read_command`` does; 0 and 1 choose what the
protocol handler does after the next complete command, as the machines' handlers do
at that point only: 0 ``reader.reset_state()`` (e.g. SMTP AUTH without a mechanism),
1 ``buffer.reset()`` and ``reset_state()``, dropping the rest (STARTTLS).  The buffer
goes back to its start when drained after a command (IMAP: when no literal or SASL
exchange is open), a full buffer without a command starts over (too long).

Contract: ``parse()`` returns AGAIN, OK, INVALID or (IMAP) LITERAL and never raises;
every result but AGAIN consumes at least one byte (no command loops forever); the
compiled reader (``pyx/_reader.pxi``, not instrumented: the pure-Python reference gives
the coverage) agrees with the reference after every call on the result, the command,
the arguments, the command text, the buffer marks and the reader's state.
"""

from __future__ import annotations

from mailgate.protocol import _impl
from mailgate.protocol._codes import AGAIN, INVALID, LITERAL, OK

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


def _snapshot(reader, rc: int | None) -> tuple:
    """What the machines read from a reader (and its buffer) after a call."""
    buffer = reader.buffer
    state = (rc, reader.state, reader.in_progress, buffer.pos, buffer.last, buffer.full)
    if rc == OK:
        state += (reader.command, tuple(reader.args), reader.command_text())
    if hasattr(reader, "tag"):
        state += (reader.tag, reader.literal_rejected, reader.literal_len)
    return state


def _parse_all(reader, after_ok: list[int]) -> list[tuple]:
    """Parse until more bytes are needed, with the handler's work after each command."""
    buffer = reader.buffer
    imap = hasattr(reader, "tag")
    out = []
    # each result but AGAIN consumes a byte: at most capacity + 1 calls
    for _ in range(buffer.capacity + 1):
        rc = reader.parse()
        assert rc in _RESULTS, rc
        out.append(_snapshot(reader, rc))
        if rc == AGAIN:
            if buffer.full:
                buffer.reset()
                reader.reset_state()
            return out
        if rc == OK and after_ok:
            if after_ok.pop(0) == 1:
                buffer.reset()
                reader.reset_state()
                return out
            reader.reset_state()
        if rc != LITERAL and not (imap and reader.in_progress):
            buffer.reset_if_drained()
    raise AssertionError("parse() returned a result without consuming a byte")


def _session(kind: str, capacity: int, data: bytes, implementation: str) -> list[tuple]:
    impl = _impl.get(implementation)
    buffer = impl.RelayBuffer(capacity)
    reader = getattr(impl, kind)(buffer)
    after_ok: list[int] = []
    out = [_snapshot(reader, None)]
    for op, chunk in steps(data, 1):
        if op < 2:
            after_ok.append(op)
            continue
        free = buffer.free
        if op == 2:
            view = buffer.get_buffer()
            n = min(len(view), len(chunk))
            view[:n] = chunk[:n]
            buffer.buffer_updated(n)
        else:
            n = buffer.write(chunk)
        assert n == min(len(chunk), free), "the buffer took the wrong number of bytes"
        out += _parse_all(reader, after_ok)
    return out


def one_input(data: bytes) -> None:
    """Run ``data`` on every implementation; the reader sessions must be identical."""
    if not data:
        return
    kind = READERS[data[0] % 3]
    capacity = CAPACITIES[(data[0] >> 2) % len(CAPACITIES)]
    names = _impl.available()
    sessions = [_session(kind, capacity, data, name) for name in names]
    for name, other in zip(names[1:], sessions[1:]):
        for i, (want, got) in enumerate(zip(sessions[0], other)):
            assert want == got, f"{kind} call {i}: {names[0]} {want} != {name} {got}"
        assert len(other) == len(sessions[0])
