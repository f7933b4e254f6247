"""The asyncio layer: ports, idle timeouts, shutdown, back-pressure, garbage, internal errors."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mailgate.demo import (
    DemoMailServer,
    ImapSession,
    Limits,
    Mailstore,
    Pop3Session,
    SmtpSession,
)
from mailgate.demo import imap as imap_module

from tests.demo.helpers import ServerThread, make_store

TIMED_OUT = {"imap": b"* BYE Disconnected for inactivity.\r\n",
             "pop3": b"-ERR Disconnected for inactivity.\r\n",
             "smtp": b"421 4.4.2 localhost Error: timeout exceeded\r\n"}


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.recv(4096)                     # the greeting
    return sock


def read_to_eof(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_idle_timeout_says_goodbye_and_closes(loop_kind):
    srv = ServerThread(make_store(), loop_kind, limits=Limits(idle_timeout=0.3))
    try:
        socks = {name: connect(port) for name, port in srv.ports.items()}
        time.sleep(0.2)
        socks["imap"].sendall(b"a NOOP\r\n")        # input re-arms the timer
        started = time.monotonic()
        for name, sock in socks.items():
            expected = TIMED_OUT[name]
            if name == "imap":
                expected = b"a OK NOOP completed\r\n" + expected
            assert read_to_eof(sock) == expected
            sock.close()
        assert time.monotonic() - started >= 0.25
        assert srv.server.connections == 0
    finally:
        srv.stop()


def test_connections_over_the_limit_are_refused():
    srv = ServerThread(make_store(), limits=Limits(max_connections=2))
    try:
        held = [connect(srv.ports["imap"]) for _ in range(2)]
        extra = socket.create_connection(("127.0.0.1", srv.ports["imap"]), timeout=5)
        assert read_to_eof(extra) == b"* BYE Too many connections, try again later.\r\n"
        # the limit is per protocol
        assert socket.create_connection(("127.0.0.1", srv.ports["pop3"]), timeout=5).recv(3) == b"+OK"
        held.pop().close()
        time.sleep(0.1)
        connect(srv.ports["imap"]).close()
        for sock in held:
            sock.close()
    finally:
        srv.stop()


def test_close_says_goodbye_to_connected_clients(server):
    socks = {name: connect(port) for name, port in server.ports.items()}
    server.call(server.server.close())
    assert {name: read_to_eof(s) for name, s in socks.items()} == {
        "imap": b"* BYE Server shutting down.\r\n",
        "pop3": b"-ERR Server shutting down.\r\n",
        "smtp": b"421 4.3.2 localhost Service shutting down\r\n"}
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.ports["imap"]), timeout=2)


def test_selected_protocols_and_lifecycle_errors():
    async def main():
        store = Mailstore()
        server = DemoMailServer(store, imap_port=None, pop3_port=None, hostname="demo.test")
        with pytest.raises(RuntimeError):
            await server.serve_forever()
        async with server:
            assert list(server.ports) == ["smtp"]
            with pytest.raises(RuntimeError):
                await server.start()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["smtp"])
            assert await reader.readline() == b"220 demo.test ESMTP mailgate demo\r\n"
            forever = asyncio.ensure_future(server.serve_forever())
            await asyncio.sleep(0)
            assert not forever.done()
            writer.close()
        await asyncio.wait_for(forever, 5)
        # a port that is taken leaves nothing bound
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = DemoMailServer(store, pop3_port=taken.getsockname()[1])
        with pytest.raises(OSError):
            await server.start()
        assert server.ports == {}
        taken.close()
    asyncio.run(main())
    with pytest.raises(ValueError):
        DemoMailServer(Mailstore(), hostname="bad name")
    for bad in ({"line_length": 100}, {"message_size": 0}, {"idle_timeout": 0}):
        with pytest.raises(ValueError):
            Limits(**bad)


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        srv = ServerThread(make_store(), host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        sock = socket.create_connection(("::1", srv.ports["pop3"]), timeout=5)
        assert sock.recv(100).startswith(b"+OK")
        sock.close()
    finally:
        srv.stop()


def test_a_client_that_does_not_read_is_not_buffered_without_bound(server):
    store = server.store
    big = b"Subject: big\r\n\r\n" + b"x" * 200_000 + b"\r\n"
    store.deliver("alice", big)
    sock = connect(server.ports["imap"])
    sock.sendall(b'a LOGIN alice "wonder land"\r\nb SELECT INBOX\r\n')
    sock.sendall(b"".join(b"f%d FETCH 4 BODY.PEEK[]\r\n" % i for i in range(100)))
    time.sleep(0.3)
    (conn,) = list(server.server._connections)
    # reading stopped once the transport's buffer passed its high-water mark
    assert conn.transport.get_write_buffer_size() < 2 * len(big) + 65536 * 2
    sock.sendall(b"z LOGOUT\r\n")
    data = read_to_eof(sock)
    assert data.count(big) == 100 and data.endswith(b"z OK LOGOUT completed\r\n")


def test_a_half_closed_client_still_gets_every_reply(server):
    big = b"Subject: big\r\n\r\n" + b"y" * 300_000 + b"\r\n"
    server.store.deliver("alice", big)
    sock = connect(server.ports["imap"])
    sock.sendall(b'a LOGIN alice "wonder land"\r\nb SELECT INBOX\r\n'
                 + b"".join(b"f%d FETCH 4 BODY.PEEK[]\r\n" % i for i in range(20)))
    sock.shutdown(socket.SHUT_WR)
    data = read_to_eof(sock)
    assert data.count(big) == 20 and data.endswith(b"f19 OK FETCH completed\r\n")


def test_garbage_over_the_wire_never_kills_the_server(server, caplog):
    garbage = bytes(range(256)) * 40 + b"\r\n{99999999999999999999}\r\n" + b"\n" * 100
    for port in server.ports.values():
        sock = connect(port)
        sock.sendall(garbage)
        read_to_eof(sock)               # too many errors: the server hangs up
        sock.close()
    for port in server.ports.values():
        connect(port).close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_internal_error_is_contained(monkeypatch, caplog):
    def broken(self, tag, args, uid):
        raise RuntimeError("boom")
    monkeypatch.setitem(ImapSession._COMMANDS, "NOOP", (broken, imap_module.ANY))
    s = ImapSession(make_store())
    s.start()
    with caplog.at_level(logging.ERROR, logger="mailgate.demo"):
        assert s.receive_data(b"a NOOP\r\nb CAPABILITY\r\n") == b"* BYE Internal server error.\r\n"
    assert s.closed
    assert "internal error" in caplog.records[0].getMessage()


@pytest.mark.parametrize("session_class", [ImapSession, Pop3Session, SmtpSession])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"\r\n", b"{5}\r\n", b"{3+}\r\n", b"a LOGIN alice \"wonder land\"\r\n",
                     b"USER alice\r\nPASS wonder land\r\n", b"EHLO x\r\n", b"DATA\r\n",
                     b"MAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\n", b"s SELECT INBOX\r\n",
                     b"f FETCH 1:* (BODY[1.MIME] ENVELOPE BODYSTRUCTURE)\r\n",
                     b"AUTH PLAIN\r\n", b"x SEARCH OR (", b".\r\n", b"RETR 1\r\n"])),
    max_size=30))
def test_fuzzed_input_never_raises(session_class, chunks):
    session = session_class(make_store(), limits=Limits(line_length=512, message_size=4096))
    session.start()
    original = session._goodbye
    reasons = []
    session._goodbye = lambda reason: (reasons.append(reason), original(reason))
    for chunk in chunks:
        assert isinstance(session.receive_data(chunk), bytes)
    assert "internal" not in reasons
