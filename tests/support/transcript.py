"""Raw client scripts: send exact bytes, record exactly what comes back.

A script is a list of steps; bytes in the list are sent as they are.  Reads end on a
condition (a line, a pattern, a tagged reply, silence, EOF) or on the step's bounded
timeout, which is recorded rather than raised, so nginx's and mailgate's behaviour
can be compared even when one of them stalls.  The result is a :class:`Transcript`:
the ordered events, with the server's bytes grouped between the client's actions.

Example::

    t = run_script(("127.0.0.1", port), [
        ReadLine(),                       # greeting
        b"a1 CAPABILITY\\r\\n", ReadTagged(b"a1"),
        b"a2 STARTTLS\\r\\n", ReadTagged(b"a2"), StartTLS(),
        b"a3 LOGOUT\\r\\n", ReadEOF(),
    ], tls_context=client_context(pki))
    assert_same_transcript(nginx_t, mailgate_t, MASK_SALTS)
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "MASK_SALTS",
    "Close",
    "Event",
    "ReadEOF",
    "ReadIdle",
    "ReadLine",
    "ReadTagged",
    "ReadUntil",
    "Send",
    "ShutdownWrite",
    "Sleep",
    "StartTLS",
    "Transcript",
    "assert_same_transcript",
    "mask",
    "mask_backend_timing",
    "mask_sasl_salt",
    "run_script",
]

Hook = Callable[[bytes], bytes]

# -- steps -------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send these bytes (in one ``sendall``)."""

    data: bytes


@dataclass(frozen=True)
class ReadLine:
    """Read until ``count`` more LF-terminated lines have arrived."""

    count: int = 1
    timeout: float | None = None


@dataclass(frozen=True)
class ReadUntil:
    """Read until the bytes received in this step match ``pattern``.

    ``pattern`` is a bytes substring or a compiled bytes regex (searched).
    """

    pattern: bytes | re.Pattern[bytes]
    timeout: float | None = None


def ReadTagged(tag: bytes, timeout: float | None = None) -> ReadUntil:
    """Read until the IMAP tagged reply ``TAG ...CRLF``."""
    return ReadUntil(re.compile(rb"(?:^|\n)" + re.escape(tag) + rb" [^\n]*\n"), timeout)


@dataclass(frozen=True)
class ReadIdle:
    """Read until nothing arrives for ``quiet`` seconds (or the step times out)."""

    quiet: float = 0.3
    timeout: float | None = None


@dataclass(frozen=True)
class ReadEOF:
    """Read until the server closes the connection."""

    timeout: float | None = None


@dataclass(frozen=True)
class StartTLS:
    """Start TLS on the connection (after the server said yes to STARTTLS)."""

    context: ssl.SSLContext | None = None
    server_hostname: str | None = None


@dataclass(frozen=True)
class Sleep:
    """Wait without reading."""

    seconds: float


@dataclass(frozen=True)
class ShutdownWrite:
    """Half-close: no more bytes from the client."""


@dataclass(frozen=True)
class Close:
    """Close the connection from the client side."""


Step = (
    bytes
    | Send
    | ReadLine
    | ReadUntil
    | ReadIdle
    | ReadEOF
    | StartTLS
    | Sleep
    | ShutdownWrite
    | Close
)

# -- transcript --------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One thing that happened.

    ``kind`` is ``"C"`` (client sent ``data``), ``"S"`` (server sent ``data``),
    ``"tls"`` (handshake done; ``data`` is the protocol version), ``"eof"`` (server
    closed), ``"timeout"`` (a read step ended by its timeout), ``"error"`` (``data``
    is the error's name, e.g. ``b"ConnectionResetError"``), ``"close"``.
    """

    kind: str
    data: bytes = b""


@dataclass
class Transcript:
    """What happened on one connection, in order."""

    events: list[Event] = field(default_factory=list)

    def add(self, kind: str, data: bytes = b"") -> None:
        """Append an event, merging consecutive server bytes into one event."""
        if kind == "S" and self.events and self.events[-1].kind == "S":
            self.events[-1] = Event("S", self.events[-1].data + data)
        else:
            self.events.append(Event(kind, data))

    @property
    def received(self) -> bytes:
        """Every byte the server sent, concatenated."""
        return b"".join(e.data for e in self.events if e.kind == "S")

    @property
    def sent(self) -> bytes:
        """Every byte the client sent, concatenated."""
        return b"".join(e.data for e in self.events if e.kind == "C")

    def replies(self) -> list[bytes]:
        """The server's bytes grouped between client actions (one entry per read)."""
        return [e.data for e in self.events if e.kind == "S"]

    @property
    def closed_by_server(self) -> bool:
        """True when the server closed the connection."""
        return any(e.kind == "eof" for e in self.events)

    @property
    def timed_out(self) -> bool:
        """True when some read ended by its timeout."""
        return any(e.kind == "timeout" for e in self.events)

    def normalized(self, *hooks: Hook) -> Transcript:
        """A copy with every server chunk passed through ``hooks`` in turn."""
        events = []
        for event in self.events:
            data = event.data
            if event.kind == "S":
                for hook in hooks:
                    data = hook(data)
            events.append(Event(event.kind, data))
        return Transcript(events)

    def render(self) -> str:
        """One line per event, bytes shown as Python literals (for diffs)."""
        lines = []
        for event in self.events:
            if event.kind in ("C", "S"):
                for piece in event.data.splitlines(keepends=True) or [b""]:
                    lines.append(f"{event.kind}: {piece!r}")
            else:
                lines.append(f"-- {event.kind} {event.data.decode(errors='replace')}".rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def mask(pattern: bytes | re.Pattern[bytes], replacement: bytes = b"<masked>") -> Hook:
    """A hook that replaces every match of ``pattern`` (a bytes regex)."""
    regex = re.compile(pattern) if isinstance(pattern, bytes) else pattern
    return lambda data: regex.sub(replacement, data)


_SALT = re.compile(rb"<[^<>@\s]+@[^<>\s]*>")
_CHALLENGE = re.compile(rb"^(\+ |334 )([A-Za-z0-9+/=]+)(\r?\n)", re.MULTILINE)


def mask_sasl_salt(data: bytes) -> bytes:
    """Mask nginx's per-connection salts: the APOP ``<...@host>`` in a POP3 greeting
    and base64 CRAM-MD5 challenges (``+ ...`` / ``334 ...``) that decode to one."""
    data = _SALT.sub(b"<SALT>", data)

    def challenge(match: re.Match[bytes]) -> bytes:
        try:
            decoded = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            return match.group(0)
        if _SALT.fullmatch(decoded):
            return match.group(1) + b"<CHALLENGE>" + match.group(3)
        return match.group(0)

    return _CHALLENGE.sub(challenge, data)


_BACKEND_TIMING = re.compile(rb"\((?:\d+\.\d+ \+ )*\d+\.\d+ secs\)")


def mask_backend_timing(data: bytes) -> bytes:
    """Mask the timings Dovecot puts in its tagged replies, e.g. ``(0.001 + 0.000 secs)``:
    they differ between two runs of the same script, whichever proxy is in front."""
    return _BACKEND_TIMING.sub(b"(TIMING secs)", data)


MASK_SALTS: tuple[Hook, ...] = (mask_sasl_salt, mask_backend_timing)
"""The hooks every conformance comparison needs (per-connection salts, backend timings)."""


def assert_same_transcript(expected: Transcript, actual: Transcript, *hooks: Hook) -> None:
    """Assert two transcripts are equal after ``hooks``; the message is a unified diff."""
    left = expected.normalized(*hooks)
    right = actual.normalized(*hooks)
    if left.events != right.events:
        diff = "\n".join(
            difflib.unified_diff(
                left.render().splitlines(),
                right.render().splitlines(),
                "expected",
                "actual",
                lineterm="",
            )
        )
        raise AssertionError(f"transcripts differ:\n{diff}")


# -- runner ------------------------------------------------------------------------


class _Conn:
    def __init__(self, sock: socket.socket, transcript: Transcript) -> None:
        self.sock = sock
        self.t = transcript
        self.eof = False

    def read(
        self, done: Callable[[bytes], bool], timeout: float, quiet: float | None = None
    ) -> None:
        got = bytearray()
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while not self.eof and not done(bytes(got)):
            now = time.monotonic()
            if now >= deadline:
                self.t.add("timeout")
                return
            if quiet is not None and now - last >= quiet:
                return
            wait = deadline - now if quiet is None else min(deadline - now, quiet - (now - last))
            self.sock.settimeout(max(0.001, wait))
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            except OSError as exc:
                self.t.add("error", type(exc).__name__.encode())
                self.eof = True
                return
            if not chunk:
                self.eof = True
                self.t.add("eof")
                return
            got += chunk
            last = time.monotonic()
            self.t.add("S", chunk)


def _lines_done(count: int) -> Callable[[bytes], bool]:
    return lambda got: got.count(b"\n") >= count


def _until_done(pattern: bytes | re.Pattern[bytes]) -> Callable[[bytes], bool]:
    if isinstance(pattern, bytes):
        return lambda got: pattern in got
    return lambda got: pattern.search(got) is not None


def run_script(
    address: tuple[str, int],
    script: Iterable[Step],
    *,
    tls_context: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
    server_hostname: str | None = None,
    timeout: float = 5.0,
    connect_timeout: float = 5.0,
) -> Transcript:
    """Run ``script`` against ``address`` and return the transcript.

    ``implicit_tls`` wraps the connection in TLS (``tls_context``) before the first
    step; :class:`StartTLS` steps use ``tls_context`` unless they bring their own.
    Every read is bounded by its own timeout or ``timeout``.
    """
    transcript = Transcript()
    sock = socket.create_connection(address, timeout=connect_timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = _Conn(sock, transcript)
    try:
        if implicit_tls:
            conn.sock = _handshake(
                sock, tls_context, server_hostname or address[0], timeout, transcript
            )
        for step in script:
            if conn.sock is None:
                break
            _run_step(conn, step, tls_context, server_hostname or address[0], timeout)
    finally:
        if conn.sock is not None:
            conn.sock.close()
    return transcript


def _handshake(
    sock: socket.socket,
    context: ssl.SSLContext | None,
    hostname: str,
    timeout: float,
    transcript: Transcript,
) -> socket.socket:
    if context is None:
        raise ValueError("TLS needs a tls_context (see clients.client_context)")
    sock.settimeout(timeout)
    wrapped = context.wrap_socket(sock, server_hostname=hostname)
    transcript.add("tls", (wrapped.version() or "").encode())
    return wrapped


def _run_step(
    conn: _Conn, step: Step, context: ssl.SSLContext | None, hostname: str, timeout: float
) -> None:
    t = conn.t
    if isinstance(step, bytes):
        step = Send(step)
    if isinstance(step, Send):
        t.add("C", step.data)
        try:
            conn.sock.sendall(step.data)
        except OSError as exc:
            t.add("error", type(exc).__name__.encode())
    elif isinstance(step, ReadLine):
        conn.read(_lines_done(step.count), step.timeout or timeout)
    elif isinstance(step, ReadUntil):
        conn.read(_until_done(step.pattern), step.timeout or timeout)
    elif isinstance(step, ReadIdle):
        conn.read(lambda got: False, step.timeout or timeout, quiet=step.quiet)
    elif isinstance(step, ReadEOF):
        conn.read(lambda got: False, step.timeout or timeout)
    elif isinstance(step, StartTLS):
        try:
            conn.sock = _handshake(
                conn.sock, step.context or context, step.server_hostname or hostname, timeout, t
            )
        except (ssl.SSLError, OSError) as exc:
            t.add("error", type(exc).__name__.encode())
            conn.eof = True
    elif isinstance(step, Sleep):
        time.sleep(step.seconds)
    elif isinstance(step, ShutdownWrite):
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            t.add("error", type(exc).__name__.encode())
    elif isinstance(step, Close):
        t.add("close")
        conn.sock.close()
        conn.sock = None  # type: ignore[assignment]
    else:
        raise TypeError(f"unknown script step {step!r}")
