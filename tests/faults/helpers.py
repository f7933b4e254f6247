"""What the fault tests share: starting a gate on the loop asked for, the check that its
workers survived and still serve, a scripted DNS server on a thread, and backends that
fail on purpose."""

from __future__ import annotations

import select
import socket
import struct


from tests.e2e.backends import Connection
from tests.e2e.gates import worker_pids
from tests.e2e.scripts import PROTOCOLS, login_script
from tests.support.dns_server import DNSServer
from tests.support.embedded import EmbeddedProxy, LoopThread
from tests.support.procinfo import event_loop
from tests.support.procs import wait_until
from tests.support.proxy import LOOPS
from tests.support.transcript import ReadEOF, ReadLine, ReadTagged, run_script

__all__ = [
    "BINARIES",
    "SYSTEMS",
    "DNSThread",
    "ResetRelay",
    "assert_serves",
    "auth_reset_midway",
    "close_after",
    "reset",
    "start",
]

BINARIES = tuple(f"mailgate-{loop}" for loop in LOOPS)
"""The ``mailgate`` binary with its workers on each event loop (``MAILGATE_LOOP``)."""
SYSTEMS = (*BINARIES, "embedded")
"""The systems under test: the binary on each loop, and the embedded proxy."""


def start(gate, body: str, **kwargs):
    """Start ``gate`` on ``body`` and wait for its workers.  The binary's workers must
    run the loop its name asks for: a binary that did not honour ``MAILGATE_LOOP``
    would test one loop twice."""
    gate.start(body, **kwargs)
    wanted = getattr(getattr(gate, "implementation", None), "loop", None)
    if wanted is not None:
        assert wait_until(lambda: len(worker_pids(gate)) == gate.worker_processes, 10), (
            "the workers did not start")
        running = {event_loop(pid) for pid in worker_pids(gate)}
        assert running == {wanted}, f"MAILGATE_LOOP={wanted}, but the workers run {running}"
    return gate


_SESSION_END = {
    "imap": [ReadTagged(b"a1"), b"a2 LOGOUT\r\n", ReadEOF()],
    "pop3": [ReadLine(), b"QUIT\r\n", ReadEOF()],
    "smtp": [ReadLine(), b"QUIT\r\n", ReadEOF()],
}
"""After ``login_script``'s credentials: the login's answer, the way out, the close."""

_LOGGED_IN = {"imap": b"a1 OK ", "pop3": b"+OK Logged in.", "smtp": b"235 "}
_GOODBYE = {"imap": b"a2 OK ", "pop3": b"+OK ", "smtp": b"221 "}


def assert_serves(gate, workers: list[int]) -> None:
    """The same workers as before the fault (``workers``) and a whole session on every
    protocol's listener (named after the protocol): greeting, login, logout."""
    assert worker_pids(gate) == workers, "a worker died or was replaced"
    for protocol in PROTOCOLS:
        transcript = run_script(gate.address(protocol),
                                login_script(protocol, then=_SESSION_END[protocol]))
        replies = transcript.replies()
        assert any(r.startswith(_LOGGED_IN[protocol]) for r in replies), (protocol, transcript)
        assert _GOODBYE[protocol] in replies[-1] and transcript.closed_by_server, (
            protocol, transcript)
    if isinstance(gate, EmbeddedProxy):
        assert gate.loop_errors == []


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a process that dies with unread input."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- backends that fail --------------------------------------------------------------------

_GREETINGS = {"imap": b"* OK ready\r\n", "pop3": b"+OK ready\r\n", "smtp": b"220 backend ESMTP\r\n"}
_NEXT = {"imap": b"+ go ahead\r\n", "pop3": b"+OK\r\n", "smtp": b"250 backend\r\n"}
"""What makes the proxy send its next login command: the IMAP literal's continuation,
POP3's +OK after USER, SMTP's 250 after EHLO/HELO."""


def close_after(protocol: str, commands: int):
    """A backend handler: greet, answer the proxy's login commands until ``commands``
    have arrived, then close (FIN) without answering the last one."""

    def handle(conn: Connection) -> None:
        conn.sock.sendall(_GREETINGS[protocol])
        for seen in range(1, commands + 1):
            while conn.received.count(b"\n") < seen:
                if not conn.recv():
                    return
            if seen < commands:
                conn.sock.sendall(_NEXT[protocol])
        conn.sock.close()

    return handle


class ResetRelay:
    """A backend handler relaying to ``target`` (Dovecot) that resets the proxy's
    connection once ``after`` bytes have gone from the backend to the proxy."""

    def __init__(self, target: tuple[str, int], after: int):
        self.target = target
        self.after = after

    def __call__(self, conn: Connection) -> None:
        relayed = 0
        with socket.create_connection(self.target, timeout=10) as upstream:
            while True:
                ready, _, _ = select.select([conn.sock, upstream], [], [], 10)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is conn.sock:
                        upstream.sendall(data)
                        continue
                    conn.sock.sendall(data)
                    relayed += len(data)
                    if relayed >= self.after:
                        reset(conn.sock)
                        return


def auth_reset_midway(conn: Connection) -> None:
    """An auth_http server handler: read the request, send half an answer, reset."""
    while b"\r\n\r\n" not in conn.received:
        if not conn.recv():
            return
    conn.sock.sendall(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Ser")
    reset(conn.sock)


# -- DNS -------------------------------------------------------------------------------------


class DNSThread(LoopThread):
    """tests/support's scripted DNS server on an event loop thread of its own, for a
    proxy in another process (or on another loop)."""

    def __init__(self) -> None:
        super().__init__()
        self.server: DNSServer = self.call(DNSServer().start(), 10)

    @property
    def address(self) -> str:
        """``host:port`` for the ``resolver`` directive."""
        host, port = self.server.address
        return f"{host}:{port}"

    def close(self) -> None:
        self.call(self.server.close(), 10)
        super().close()
