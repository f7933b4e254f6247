"""The proxy under strain: a client reading a 10 MB FETCH slowly (memory must stay
within the buffers: back-pressure both ways), 500 concurrent logged-in sessions, and
garbage, half-open and reset connections next to a working session."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import struct
import time

import pytest

from tests.e2e.gates import rss_bytes, worker_pids
from tests.support.configs import TLS
from tests.support.transcript import ReadEOF, ReadLine, ReadTagged, run_script
from tests.support.users import ALICE

MAIL = """
    server_name mx.test;
    auth_http $auth_http;
""" + TLS + """
    server { listen 127.0.0.1:${port_imap}; protocol imap; }
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
"""

MEMORY_SLACK = 4 * 1024 * 1024
"""How much a worker may grow while a 10 MB answer waits for a stalled client: far
less than the answer, more than buffers and allocator noise (nginx and mailgate grow
by nothing measurable; an unbounded write buffer in mailgate grew by 8 MB)."""


def _recv_line(sock) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise AssertionError(f"closed after {line!r}")
        line += chunk
    return line


def _read_tagged(sock, tag: bytes) -> bytes:
    lines = b""
    while True:
        line = _recv_line(sock)
        lines += line
        if line.startswith(tag + b" "):
            return lines


@pytest.mark.parametrize("security", ["plain", "ssl"])
def test_slow_reader_of_10_mb_keeps_memory_bounded(gate, dovecot, tls_client_context, security):
    gate.start(MAIL)
    stored = dovecot.delivered("bulk")[0].data
    address = gate.address("imaps" if security == "ssl" else "imap")
    sock = socket.create_connection(address, timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    if security == "ssl":
        sock = tls_client_context.wrap_socket(sock, server_hostname="localhost")
    with sock:
        _recv_line(sock)
        sock.sendall(b"a1 LOGIN bulk bulk-secret\r\na2 EXAMINE INBOX\r\n")
        _read_tagged(sock, b"a2")
        pids = worker_pids(gate)
        into = bytearray(len(stored) + 4096)  # all the client's memory, allocated up front
        view = memoryview(into)
        baseline = sum(rss_bytes(p) for p in pids)
        peak = baseline
        sock.sendall(b"a3 FETCH 1 BODY.PEEK[]\r\n")
        # stalled: the backend has sent what it could; the proxy must not hold it all
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            peak = max(peak, sum(rss_bytes(p) for p in pids))
            time.sleep(0.05)
        # then slowly: 32 KB at a time, a pause every 256 KB
        got = 0
        while not re.search(rb"\r\na3 OK[^\n]*\n\Z", into[max(0, got - 200):got]):
            n = sock.recv_into(view[got:got + 32768])
            assert n, "closed early"
            got += n
            if got % (256 * 1024) < n:
                time.sleep(0.01)
                peak = max(peak, sum(rss_bytes(p) for p in pids))
        sock.sendall(b"a4 LOGOUT\r\n")
    literal = b"* 1 FETCH (BODY[] {%d}\r\n" % len(stored)
    data = bytes(into[:got])
    assert data.index(literal) < 200
    assert data[data.index(literal) + len(literal):][:len(stored)] == stored
    grown = peak - baseline
    print(f"{gate.name} {security}: worker RSS grew by {grown // 1024} KiB during the slow read")
    assert grown < MEMORY_SLACK, grown


SESSIONS = 500
LOGINS_AT_ONCE = 16  # nginx's 1024 worker_connections: 500 clients + 500 backends + auth


async def _session(address, index, logged_in, everyone, logins, expected):
    reader, writer = await asyncio.open_connection(*address)
    try:
        assert (await reader.readline()).startswith(b"* OK")
        async with logins:
            writer.write(b"a1 LOGIN alice alice-secret\r\n")
            assert (await reader.readline()).startswith(b"a1 OK ")
        logged_in.append(index)
        if len(logged_in) == SESSIONS:
            everyone.set()
        await everyone.wait()  # all 500 are logged in at the same time
        writer.write(b"a2 EXAMINE INBOX\r\na3 FETCH 1 BODY.PEEK[]\r\n")
        await reader.readuntil(b"\r\na2 OK")
        answer = await reader.readuntil(b"\r\na3 OK")
        assert expected in answer
        writer.write(b"a4 LOGOUT\r\n")
        await reader.readuntil(b"\r\na4 OK")
    finally:
        writer.close()


def test_500_concurrent_sessions(gate, dovecot):
    gate.start(MAIL)
    expected = dovecot.delivered(ALICE.login)[0].data

    async def main():
        logged_in: list[int] = []
        everyone = asyncio.Event()
        logins = asyncio.Semaphore(LOGINS_AT_ONCE)
        results = await asyncio.wait_for(asyncio.gather(
            *(_session(gate.address("imap"), i, logged_in, everyone, logins, expected)
              for i in range(SESSIONS)), return_exceptions=True), 90)
        return [r for r in results if r is not None]

    started = time.monotonic()
    failures = asyncio.run(main())
    assert failures == [], failures[:5]
    print(f"{gate.name}: {SESSIONS} sessions in {time.monotonic() - started:.1f} s")


ABUSE_MAIL = """
    server_name mx.test;
    auth_http $auth_http;
""" + TLS + """
    timeout 3s;
    server { listen 127.0.0.1:${port_imap}; protocol imap; }
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; }
    server { listen 127.0.0.1:${port_smtp}; protocol smtp; }
    server { listen 127.0.0.1:${port_pp} proxy_protocol; protocol imap; }
"""


def test_garbage_and_half_open_connections_do_not_disturb_others(gate, dovecot, tls_client_context):
    gate.start(ABUSE_MAIL)
    # a session in the relay, and one before its login
    working = socket.create_connection(gate.address("imap"), timeout=10)
    assert _recv_line(working).startswith(b"* OK")
    working.sendall(b"a1 LOGIN alice alice-secret\r\n")
    assert b"a1 OK" in _read_tagged(working, b"a1")
    waiting = socket.create_connection(gate.address("pop3"), timeout=10)
    assert _recv_line(waiting) == b"+OK POP3 ready\r\n"

    idle = []
    for name in ("imap", "imaps", "pop3", "smtp", "pp"):
        idle.append(socket.create_connection(gate.address(name)))  # connect, say nothing
        half = socket.create_connection(gate.address(name))
        half.sendall(b"a1 LOGIN ali")  # half a line
        idle.append(half)
        garbage = socket.create_connection(gate.address(name))
        try:
            garbage.sendall(os.urandom(65536) + b"\r\n\0\xff" * 1000)
        except OSError:
            pass  # the proxy may close while the garbage is still coming: fine
        garbage.close()
    # a TLS handshake cut short, and a reset in the middle of one
    raw = socket.create_connection(gate.address("imaps"))
    raw.sendall(b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + os.urandom(40))
    raw.close()

    # the working sessions did not notice
    working.sendall(b"a2 EXAMINE INBOX\r\na3 FETCH 1 BODY.PEEK[]\r\n")
    assert dovecot.delivered(ALICE.login)[0].data in _read_tagged(working, b"a3")
    waiting.sendall(b"USER alice\r\nPASS alice-secret\r\nSTAT\r\nQUIT\r\n")
    assert _recv_line(waiting) == b"+OK\r\n"
    assert _recv_line(waiting) == b"+OK Logged in.\r\n"
    # and new ones work
    for name, tls in (("imap", False), ("imaps", True)):
        transcript = run_script(gate.address(name), [
            ReadLine(), b"a1 LOGIN alice alice-secret\r\n", ReadTagged(b"a1"), b"a2 LOGOUT\r\n",
            ReadEOF()], tls_context=tls_client_context, implicit_tls=tls)
        assert b"a1 OK" in transcript.received and transcript.closed_by_server
    working.close()
    waiting.close()
    for sock in idle:
        sock.close()


def _rst(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_connections_reset_at_once(gate, dovecot):
    gate.tolerate_problems = True  # checked below, once
    gate.start(ABUSE_MAIL)
    for name in ("imap", "imaps", "pop3", "smtp", "pp"):
        for _ in range(5):
            _rst(socket.create_connection(gate.address(name)))
    # and a reset in the middle of a session, before and after the login
    for login in (False, True):
        sock = socket.create_connection(gate.address("imap"), timeout=10)
        assert _recv_line(sock).startswith(b"* OK")
        if login:
            sock.sendall(b"a1 LOGIN alice alice-secret\r\n")
            assert _recv_line(sock).startswith(b"a1 OK")
        _rst(sock)
    transcript = run_script(gate.address("imap"), [
        ReadLine(), b"a1 LOGIN alice alice-secret\r\n", ReadTagged(b"a1"), b"a2 LOGOUT\r\n",
        ReadEOF()])
    assert b"a1 OK" in transcript.received
    time.sleep(0.3)  # what the resets cause is logged by now
    assert gate.problems() == []
