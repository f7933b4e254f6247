"""Real TLS clients for the tests: Python's ssl module (its contexts from
``tests.support.clients.client_context``) and openssl s_client."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess

from tests.support.components import require
from tests.support.memory import TLSPair

TIMEOUT = 10


class Client:
    """A connected Python ssl client; ``greeting`` is the server's first line."""

    def __init__(self, port: int, ctx: ssl.SSLContext, *, session=None, server_hostname="mx.test"):
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=server_hostname, session=session)
        except BaseException:
            raw.close()
            raise
        self._buf = b""
        self.greeting = self.readline()
        self.facts = json.loads(self.greeting[3:]) if self.greeting.startswith(b"OK ") else None

    def readline(self) -> bytes:
        while b"\n" not in self._buf:
            data = self.sock.recv(65536)
            if not data:
                break
            self._buf += data
        line, sep, self._buf = self._buf.partition(b"\n")
        return line + sep

    def read_exactly(self, size: int) -> bytes:
        while len(self._buf) < size:
            data = self.sock.recv(65536)
            if not data:
                break
            self._buf += data
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def quit(self):
        """QUIT, read BYE, then the server's close_notify; returns the session."""
        self.sock.sendall(b"QUIT\r\n")
        bye = self.readline()
        assert bye == b"BYE\r\n", bye
        session = self.sock.session
        self.sock.unwrap()
        self.sock.close()
        return session

    def close(self) -> None:
        self.sock.close()


def connect(port: int, ctx: ssl.SSLContext, **kwargs) -> Client:
    return Client(port, ctx, **kwargs)


def handshake_session(port: int, ctx: ssl.SSLContext, session=None):
    """Connect, read the greeting, quit; (facts, session) of that connection."""
    client = Client(port, ctx, session=session)
    facts = client.facts
    return facts, client.quit()


def s_client(port: int, *args: str, stdin: bytes = b"QUIT\r\n", timeout: float = TIMEOUT) -> str:
    """Run openssl s_client against the server; its stdout and stderr."""
    require("openssl")
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ign_eof", *args],
        input=stdin, capture_output=True, timeout=timeout, check=False,
    )
    return proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")


def memory_handshake(context, client_ctx: ssl.SSLContext, session=None, server_hostname="mx.test", log=None):
    """A handshake between a TLSStream and an ssl.SSLObject, in memory
    (``tests.support.memory.TLSPair``).

    Returns (server, client) once both sides are done and the client has
    processed everything the server sent (TLS 1.3 tickets included); the
    client's memory BIOs are ``client.incoming`` and ``client.outgoing``.
    """
    pair = TLSPair(context, client_ctx, session=session, server_hostname=server_hostname, log=log)
    client = pair.client.obj
    client.incoming, client.outgoing = pair.client.incoming, pair.client.outgoing
    return pair.server, client
