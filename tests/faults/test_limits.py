"""Limits: 10,000 idle TLS connections held by one worker (``worker_rlimit_nofile``), and
``worker_connections`` reached (nginx's ``[alert]``, the refused client closed, no crash,
new logins once the others have gone)."""

from __future__ import annotations

import asyncio
import resource
import socket
import ssl
import struct
import time
from collections.abc import Iterator

import pytest

from tests.e2e.gates import rss_bytes, worker_pids
from tests.faults.helpers import assert_serves, start
from tests.support.procinfo import fd_count
from tests.support.procs import wait_until
from tests.support.transcript import ReadLine, ReadTagged, run_script

IDLE = 10_000
IDLE_MAIL = """
    server_name mx.test;
    auth_http $auth_http;
    ssl_certificate $ecdsa_cert;
    ssl_certificate_key $ecdsa_key;
    ssl_protocols TLSv1.2 TLSv1.3;
    server { listen 127.0.0.1:${port_imaps} ssl backlog=1024; protocol imap; }
"""
HANDSHAKES_AT_ONCE = 200  # the client's handshakes in flight (a bounded backlog)
IDLE_LIMIT = 120.0  # seconds for opening all of them, whatever happens
IDLE_BYTES_PER_CONNECTION = 32 * 1024
"""The bound of the worker's growth per idle TLS connection: about 1.6 times what it
takes on both loops (some 20 KiB, bench/RESULTS.md "Soak"); one 16 KiB buffer allocated
per connection in advance (a TLS record's) would cross it."""


class IdleTLSClient(asyncio.Protocol):
    """A TLS client over memory BIOs on the test's own loop: handshake, read the
    greeting line, then hold the connection.  Cheap enough for 10,000 at once."""

    def __init__(self, context: ssl.SSLContext, greeted: asyncio.Future):
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.greeted = greeted
        self.received = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._advance()

    def data_received(self, data: bytes) -> None:
        self.incoming.write(data)
        self._advance()

    def _advance(self) -> None:
        try:
            self.tls.do_handshake()
            while True:
                self.received += self.tls.read(4096)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            if not self.greeted.done():
                self.greeted.set_exception(exc)
        pending = self.outgoing.read()
        if pending:
            self.transport.write(pending)
        if b"\n" in self.received and not self.greeted.done():
            self.greeted.set_result(self.received)

    def connection_lost(self, exc) -> None:
        if not self.greeted.done():
            self.greeted.set_exception(exc or ConnectionError("closed before the greeting"))

    def reset(self) -> None:
        """Close with a reset: no TIME_WAIT left on the client's ports."""
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


async def _open_idle(address, context: ssl.SSLContext, count: int) -> list[IdleTLSClient]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)

    async def one() -> IdleTLSClient:
        async with gate:
            greeted = loop.create_future()
            _, client = await loop.create_connection(
                lambda: IdleTLSClient(context, greeted), *address)
            assert (await greeted).startswith(b"* OK"), client.received
            return client

    return await asyncio.gather(*(one() for _ in range(count)))


@pytest.fixture
def descriptors() -> Iterator[int]:
    """This process may open as many descriptors as its hard limit allows (for
    ``worker_rlimit_nofile`` too: raising a hard limit takes CAP_SYS_RESOURCE, which a
    container's root may lack); that limit, at most 25,000."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = min(hard, 25_000) if hard != resource.RLIM_INFINITY else 25_000
    if limit < IDLE + 1000:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard}: not enough for {IDLE} clients")
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    yield limit
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.slow
def test_ten_thousand_idle_tls_connections(binary, descriptors, auth_server, dovecot,
                                           tls_client_context):
    binary.events = f"worker_connections {IDLE * 2};"
    start(binary, IDLE_MAIL, main=f"worker_rlimit_nofile {descriptors};")
    address = binary.address("imaps")
    loop = asyncio.new_event_loop()
    try:
        # warm-up: what every connection shares exists before the baseline
        warm = loop.run_until_complete(_open_idle(address, tls_client_context, 20))
        for client in warm:
            client.reset()
        loop.run_until_complete(asyncio.sleep(0.5))
        (worker,) = worker_pids(binary)
        rss0, fds0 = rss_bytes(worker), fd_count(worker)
        started = time.monotonic()
        clients = loop.run_until_complete(asyncio.wait_for(
            _open_idle(address, tls_client_context, IDLE), IDLE_LIMIT))
        opened = time.monotonic() - started
        loop.run_until_complete(asyncio.sleep(0.5))
        rss1, fds1 = rss_bytes(worker), fd_count(worker)
        assert worker_pids(binary) == [worker]
        assert fds1 - fds0 == IDLE  # every client is held, each by one descriptor
        per_connection = (rss1 - rss0) / IDLE
        print(f"{binary.name}: {IDLE} idle TLS connections in {opened:.1f} s; worker RSS "
              f"{rss0 // 1024} -> {rss1 // 1024} KiB, {per_connection:.0f} B per connection")
        assert per_connection < IDLE_BYTES_PER_CONNECTION
        for client in clients:
            client.reset()
        loop.run_until_complete(asyncio.sleep(0.1))
    finally:
        loop.close()
    # every descriptor comes back, and the worker still logs in
    assert wait_until(lambda: fd_count(worker) == fds0, 30), (fd_count(worker), fds0)
    transcript = run_script(address, [ReadLine(), b"a1 LOGIN alice alice-secret\r\n",
                                      ReadTagged(b"a1")],
                            tls_context=tls_client_context, implicit_tls=True,
                            server_hostname="localhost")
    assert b"a1 OK " in transcript.received
    assert worker_pids(binary) == [worker]


LIMITED_MAIL = """
    server_name mx.test;
    auth_http $auth_http;
    ssl_certificate $ecdsa_cert;
    ssl_certificate_key $ecdsa_key;
    ssl_protocols TLSv1.2 TLSv1.3;
    server { listen 127.0.0.1:${port_imap}; protocol imap; }
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; }
    server { listen 127.0.0.1:${port_smtp}; protocol smtp; }
"""
WORKER_CONNECTIONS = 10
"""Less the 4 listening sockets and nginx's channel to the master: 5 for sessions,
counting their backend and auth_http connections."""


def test_worker_connections_reached(binary, auth_server, dovecot, smtp_backend,
                                    tls_client_context):
    binary.events = f"worker_connections {WORKER_CONNECTIONS};"
    binary.tolerate_problems = True  # the [alert] is expected: checked below
    (worker,) = worker_pids(start(binary, LIMITED_MAIL))
    held = []
    # a logged-in session (client and backend: 2) and three waiting ones: 5
    relayed = socket.create_connection(binary.address("imap"), timeout=10)
    relayed.recv(1024)
    relayed.sendall(b"a1 LOGIN alice alice-secret\r\na2 EXAMINE INBOX\r\n")
    assert wait_until(lambda: b"a2 OK" in _peek(relayed), 5)
    for name in ("imap", "pop3"):
        held.append(socket.create_connection(binary.address(name), timeout=10))
        assert held[-1].recv(1024)
    tls = tls_client_context.wrap_socket(
        socket.create_connection(binary.address("imaps"), timeout=10), server_hostname="localhost")
    assert tls.recv(1024).startswith(b"* OK")
    held.append(tls)

    # one more, plain or TLS: accepted and closed at once, without a greeting
    for name in ("imap", "smtp"):
        transcript = run_script(binary.address(name), [ReadLine()], timeout=3)
        assert transcript.received == b"" and transcript.closed_by_server, (name, transcript)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        tls_client_context.wrap_socket(socket.create_connection(binary.address("imaps"), timeout=3),
                                       server_hostname="localhost")
    assert "worker_connections are not enough" in binary.error_log()
    # the session in the relay did not notice
    relayed.sendall(b"a3 NOOP\r\n")
    assert wait_until(lambda: b"a3 OK" in _peek(relayed), 5)
    for sock in (relayed, *held):
        sock.close()
    # once they are gone, there is room again
    assert wait_until(lambda: run_script(binary.address("pop3"), [ReadLine()]).received, 5)
    assert_serves(binary, [worker])
    alert = f"{WORKER_CONNECTIONS} worker_connections are not enough"
    assert all(line.endswith(alert) for line in binary.problems()), binary.problems()


def _peek(sock: socket.socket) -> bytes:
    """What has arrived on ``sock`` so far (kept in the socket), waiting a little."""
    sock.settimeout(0.2)
    try:
        return sock.recv(65536, socket.MSG_PEEK)
    except TimeoutError:
        return b""
