"""Small TCP backends for what Dovecot and the SMTP backend cannot do on purpose.

``TcpBackend`` runs a handler per connection on a thread and records every byte it
received.  Handlers:

* ``greet_then(lines)`` — send the given bytes and then stay silent;
* ``silent`` — accept and never answer (the login timer);
* ``ProxyHeaderRelay(target)`` — read one PROXY protocol header (v1 or v2), keep it,
  then relay the connection to a real backend (Dovecot), so the proxy logs in for real.
"""

from __future__ import annotations

import select
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.ports import PortAllocator
from tests.support.procs import wait_until

__all__ = ["Connection", "ProxyHeaderRelay", "TcpBackend", "greet_then", "greet_then_close",
           "silent"]

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


@dataclass
class Connection:
    """One accepted connection: what arrived, and the PROXY header if one was read."""

    sock: socket.socket
    received: bytearray = field(default_factory=bytearray)
    proxy_header: bytes | None = None
    closed: threading.Event = field(default_factory=threading.Event)

    def recv(self, size: int = 65536, timeout: float = 10.0) -> bytes:
        self.sock.settimeout(timeout)
        data = self.sock.recv(size)
        self.received += data
        return data


Handler = Callable[[Connection], None]


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False


class TcpBackend:
    """A loopback TCP server running ``handler`` per connection (in threads)."""

    def __init__(self, ports: PortAllocator, handler: Handler, host: str = "127.0.0.1"):
        self.host = host
        self.port = ports.port()
        self.connections: list[Connection] = []
        self._ports = ports
        owner = self

        class _Handle(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn = Connection(self.request)
                owner.connections.append(conn)
                try:
                    handler(conn)
                except OSError:
                    pass  # the proxy hung up: that is its right
                finally:
                    conn.closed.set()

        self._server = _Server((host, self.port), _Handle)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def wait_for_connections(self, count: int = 1, timeout: float = 10.0) -> list[Connection]:
        if not wait_until(lambda: len(self.connections) >= count, timeout):
            raise AssertionError(f"{len(self.connections)} of {count} backend connections")
        return list(self.connections)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for conn in self.connections:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._ports.release(self.port)


def greet_then(*chunks: bytes, hold: float = 30.0) -> Handler:
    """Send ``chunks`` one after the other, then read and keep what comes until the
    peer closes (or ``hold`` seconds)."""

    def handle(conn: Connection) -> None:
        for chunk in chunks:
            conn.sock.sendall(chunk)
        _drain(conn, hold)

    return handle


def greet_then_close(greeting: bytes, *, lines: int = 1) -> Handler:
    """Send ``greeting`` (nothing if empty), read ``lines`` command lines, close."""

    def handle(conn: Connection) -> None:
        if greeting:
            conn.sock.sendall(greeting)
        deadline = time.monotonic() + 10
        while conn.received.count(b"\n") < lines and time.monotonic() < deadline:
            if not conn.recv(timeout=max(0.01, deadline - time.monotonic())):
                break
        conn.sock.close()

    return handle


def silent(conn: Connection) -> None:
    """Accept, never answer; keep what comes."""
    _drain(conn, 30.0)


def _drain(conn: Connection, hold: float) -> None:
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        try:
            if not conn.recv(timeout=max(0.01, deadline - time.monotonic())):
                return
        except TimeoutError:
            return


def read_proxy_header(conn: Connection, timeout: float = 10.0) -> tuple[bytes, bytes]:
    """Read one PROXY v1 or v2 header: ``(header, bytes that followed it)``."""
    data = b""
    while True:
        if data.startswith(V2_SIGNATURE[: len(data)]) and len(data) >= 16:
            length = 16 + struct.unpack("!H", data[14:16])[0]
            if len(data) >= length:
                return data[:length], data[length:]
        elif data.startswith(b"PROXY") and b"\r\n" in data:
            end = data.index(b"\r\n") + 2
            return data[:end], data[end:]
        elif data and not (V2_SIGNATURE.startswith(data[:12]) or b"PROXY".startswith(data[:5])):
            return b"", data  # no header at all: the caller's assertion tells
        chunk = conn.recv(timeout=timeout)
        if not chunk:
            return b"", data
        data += chunk


class ProxyHeaderRelay:
    """Handler: keep the PROXY header, then relay to ``target`` (e.g. Dovecot)."""

    def __init__(self, target: tuple[str, int]):
        self.target = target

    def __call__(self, conn: Connection) -> None:
        header, rest = read_proxy_header(conn)
        conn.proxy_header = header
        with socket.create_connection(self.target, timeout=10) as upstream:
            if rest:
                upstream.sendall(rest)
            _pipe(conn.sock, upstream)


def _pipe(a: socket.socket, b: socket.socket, idle: float = 30.0) -> None:
    peers = {a: b, b: a}
    open_ = {a, b}
    while open_:
        ready, _, _ = select.select(list(open_), [], [], idle)
        if not ready:
            return
        for sock in ready:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                open_.discard(sock)
                try:
                    peers[sock].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            peers[sock].sendall(data)
