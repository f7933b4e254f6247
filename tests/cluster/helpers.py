"""What the cluster tests share: an IMAPS login that offers a TLS session, and the
configuration of a node."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from tests.support.procs import wait_until
from tests.support.users import MailUser

TIMEOUT = 10.0


@dataclass
class Login:
    """One IMAPS connection's outcome."""

    reused: bool
    session: ssl.SSLSession
    version: str


def _line(tls: ssl.SSLSocket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = tls.recv(1)
        if not chunk:
            raise ConnectionError("closed after %r" % data)
        data += chunk
    return data


def imaps_login(address: tuple[str, int], ctx: ssl.SSLContext, user: MailUser,
                session: ssl.SSLSession | None = None, source: str | None = None) -> Login:
    """Connect (from the loopback address ``source``, if given) with implicit TLS offering
    ``session``, log in, log out; raises when the login is not OK."""
    source_address = (source, 0) if source else None
    with socket.create_connection(address, timeout=TIMEOUT, source_address=source_address) as sock:
        with ctx.wrap_socket(sock, server_hostname="mx.test", session=session) as tls:
            assert _line(tls).startswith(b"* OK"), "no greeting"
            tls.sendall(b"a LOGIN %s %s\r\n" % (user.login.encode(), user.password.encode()))
            while True:
                line = _line(tls)
                if line.startswith(b"a "):
                    break
            assert line.startswith(b"a OK"), line
            tls.sendall(b"b LOGOUT\r\n")
            while not _line(tls).startswith(b"b "):
                pass
            # a TLS 1.3 session (ticket) arrives after the handshake: read on first
            return Login(tls.session_reused, tls.session, tls.version())


def wait_stored(redis_server, count: int = 1) -> None:
    """Wait (5 s at most) until Redis holds ``count`` entries: a session is written after
    its handshake without waiting, so a test that reads Redis, or resumes on another node
    at once, waits for the write first."""
    client = redis_server.client()
    assert wait_until(lambda: client.dbsize() >= count, 5), "no session was stored"
