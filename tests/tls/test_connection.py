"""TLSStream over memory BIOs: handshake failures as nginx reports them,
records in and out, close_notify, quiet shutdown, end of input."""

from __future__ import annotations

import socket
import ssl
import time

import pytest
from mailgate._openssl import lib
from mailgate.tls import TLSClosed, TLSStream, TLSError, TLSHandshakeError

from tests.support.clients import client_context
from tests.tls.clients import connect, memory_handshake
from tests.tls.conf import context


@pytest.fixture
def ctx(tmp_path, pki):
    return context(tmp_path, pki)


def wait_for(events, kind, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in events if e[0] == kind]
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError(f"no {kind} event in {events}")


def established(pki, ctx):
    """(server, client, a 100-byte buffer) after a handshake, with what the handshake
    left for the server to read (TLS 1.3 tickets' answers) already read."""
    server, client = memory_handshake(ctx, client_context(pki))
    buf = bytearray(100)
    server.recv_into(buf)
    return server, client, buf


# ---- handshake failures --------------------------------------------------------------

def test_plain_http_instead_of_tls(ctx, serve):
    srv = serve(main=ctx)
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        sock.recv(100)
    (_, level, message), = wait_for(srv.events, "error")
    assert (level, message) == (
        "info", "SSL_do_handshake() failed (SSL: error:0A00009C:SSL routines::http request)"
    )


def test_peer_closed_connection_in_handshake(ctx, serve):
    srv = serve(main=ctx)
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x50\x01")  # the start of a ClientHello
    (_, level, message), = wait_for(srv.events, "error")
    assert (level, message) == ("info", "peer closed connection in SSL handshake")


def test_feed_eof_during_handshake(ctx):
    tls = TLSStream(ctx)
    assert tls.do_handshake() is False
    tls.feed_eof()
    with pytest.raises(TLSHandshakeError) as info:
        tls.do_handshake()
    assert (info.value.level, info.value.message) == ("info", "peer closed connection in SSL handshake")
    tls.close()


def test_handshake_failure_sends_the_alert(ctx):
    tls = TLSStream(ctx)
    tls.feed(b"\x16\x03\x01\x00\x05hello")
    with pytest.raises(TLSHandshakeError):
        tls.do_handshake()
    alert = bytes(tls.data_to_send())
    assert alert[:1] == b"\x15"  # an alert record for the client
    tls.close()


def test_failure_levels_follow_nginx_list():
    def packed(reason):  # ERR_PACK(ERR_LIB_SSL, 0, reason)
        return (20 << 23) | reason

    assert lib.mg_error_is_client_caused(packed(193))  # no shared cipher
    assert lib.mg_error_is_client_caused(packed(1040))  # alert handshake failure
    assert not lib.mg_error_is_client_caused(packed(68))  # internal error: crit


# ---- application data -------------------------------------------------------------------

def test_echo_through_a_real_socket(pki, ctx, serve):
    srv = serve(main=ctx)
    client = connect(srv.port, client_context(pki))
    payload = b"".join(b"%06d " % i + b"x" * 93 + b"\r\n" for i in range(10000))  # 1 MB of lines
    client.sock.sendall(payload)
    assert client.read_exactly(len(payload)) == payload
    client.quit()


def test_echo_on_uvloop(pki, ctx):
    uvloop = pytest.importorskip("uvloop")
    from tests.tls.server import ServerThread

    srv = ServerThread(loop_factory=uvloop.new_event_loop, main=ctx)
    try:
        client = connect(srv.port, client_context(pki))
        payload = b"y" * 200_000 + b"\r\n"
        client.sock.sendall(payload)
        assert client.read_exactly(len(payload)) == payload
        client.quit()
    finally:
        srv.stop()


def test_many_records_in_and_out_in_one_call(pki, ctx):
    server, client = memory_handshake(ctx, client_context(pki))
    data = bytes(range(256)) * 400  # 102400 bytes: seven records
    client.write(data)
    server.feed(client_outgoing(client))
    buf = memoryview(bytearray(len(data) + 100))
    assert server.recv_into(buf) == len(data)
    assert buf[: len(data)] == data
    assert server.recv_into(buf) == 0

    out = server.encrypt(data)
    assert len(out) > len(data) and server.pending() == 0
    client_incoming(client).write(bytes(out))
    got = b""
    while len(got) < len(data):
        got += client.read(65536)
    assert got == data
    server.close()


def test_has_input_tells_whether_recv_into_has_work(pki, ctx):
    server, client, buf = established(pki, ctx)
    assert server.has_input() is False
    assert server.recv_into(buf) == 0
    client.write(b"one")
    client.write(b"two")
    server.feed(client_outgoing(client))
    assert server.has_input() is True  # ciphertext in the input BIO
    assert server.recv_into(memoryview(buf)[:4]) == 4  # "one" and a byte of "two"
    assert server.has_input() is True  # the rest of the second record inside OpenSSL
    assert server.recv_into(buf) == 2 and buf[:2] == b"wo"
    assert server.has_input() is False
    server.feed_eof()
    assert server.has_input() is True  # the end of input is something to report
    with pytest.raises(TLSClosed):
        server.recv_into(buf)
    server.close()


def test_feed_eof_tells_whether_only_the_close_is_left(pki, ctx):
    server, client, buf = established(pki, ctx)
    client.write(b"unread")
    server.feed(client_outgoing(client))
    assert server.feed_eof() is False  # a record is still to be read
    assert server.recv_into(buf) == 6
    with pytest.raises(TLSClosed):
        server.recv_into(buf)
    server.close()

    server, _client, buf = established(pki, ctx)
    assert server.feed_eof() is True  # nothing buffered: reading on finds the close
    with pytest.raises(TLSClosed):
        server.recv_into(buf)
    server.close()


def test_feed_eof_without_ignore_unexpected_eof(pki, ctx):
    """Without SSL_OP_IGNORE_UNEXPECTED_EOF (which mailgate sets, as nginx does) a
    bare end of input is a failure OpenSSL reports: feed_eof() promises no clean close."""
    lib.SSL_CTX_clear_options(ctx._ctx, lib.SSL_OP_IGNORE_UNEXPECTED_EOF)
    server, _client, buf = established(pki, ctx)
    assert server.feed_eof() is False
    with pytest.raises(TLSError) as info:
        server.recv_into(buf)
    assert not isinstance(info.value, TLSClosed)
    assert "unexpected eof while reading" in info.value.message
    server.close()


def test_do_handshake_takes_what_was_received_into_input(pki, ctx):
    """The session's path: each read lands in tls.input and do_handshake(n) feeds it."""
    server = TLSStream(ctx)
    to_client, to_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context(pki).wrap_bio(to_client, to_server, server_hostname="mx.test")
    done = False
    for _ in range(10):
        try:
            client.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            pass
        data = to_server.read()
        server.input[: len(data)] = data
        if not server.handshake_done:
            server.do_handshake(len(data))
        else:
            server.feed_input(len(data))
        to_client.write(server.data_to_send())
        if done and server.handshake_done:
            break
    assert done and server.handshake_done
    client.write(b"hello")
    data = to_server.read()
    server.input[: len(data)] = data
    server.feed_input(len(data))
    buf = bytearray(100)
    assert server.recv_into(buf) == 5 and buf[:5] == b"hello"
    server.close()


def test_encrypt_returns_the_records_waiting_with_its_own(pki, ctx):
    server = TLSStream(ctx)
    client = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_client = client_context(pki).wrap_bio(*client, server_hostname="mx.test")
    with pytest.raises(ssl.SSLWantReadError):
        tls_client.do_handshake()
    server.feed(client[1].read())
    assert not server.do_handshake()
    client[0].write(bytes(server.data_to_send()))
    tls_client.do_handshake()
    server.feed(client[1].read())
    assert server.do_handshake()
    # what the handshake left (TLS 1.3: the session tickets) is still waiting
    assert server.pending()
    records = server.encrypt(b"second")
    assert server.pending() == 0 and server.data_to_send() == b""
    client[0].write(bytes(records))
    got = b""
    while len(got) < 6:
        got += tls_client.read(100)
    assert got == b"second"
    assert server.encrypt(b"") == b""
    server.close()


def test_feed_input_reads_the_threads_input_buffer(pki, ctx):
    server, client, buf = established(pki, ctx)
    client.write(b"through input")
    data = client_outgoing(client)
    server.input[: len(data)] = data
    server.feed_input(len(data))
    assert server.recv_into(buf) == 13 and buf[:13] == b"through input"
    assert server.data_to_send() == b""  # nothing to write: one empty buffer
    server.close()


def test_data_then_close_notify(pki, ctx):
    server, client = memory_handshake(ctx, client_context(pki))
    client.write(b"last words")
    try:
        client.unwrap()
    except ssl.SSLWantReadError:
        pass
    server.feed(client_outgoing(client))
    buf = bytearray(100)
    assert server.recv_into(buf) == 10 and buf[:10] == b"last words"
    with pytest.raises(TLSClosed):
        server.recv_into(buf)
    with pytest.raises(TLSClosed):
        server.recv_into(buf)
    # the peer closed first: nothing to send back, nothing to wait for
    assert server.shutdown() is True
    server.close()


def test_corrupt_record_is_an_error(pki, ctx):
    server, client = memory_handshake(ctx, client_context(pki))
    client.write(b"hello")
    record = bytearray(client_outgoing(client))
    record[-1] ^= 1
    server.feed(record)
    with pytest.raises(TLSError) as info:
        server.recv_into(bytearray(100))
    assert info.value.level == "info"
    assert info.value.message.startswith("SSL_read() failed (SSL: error:0A000119:")
    server.close()


def test_close_notify_and_the_peers_answer(pki, ctx):
    server, client = memory_handshake(ctx, client_context(pki))
    assert server.shutdown() is False  # sent, the client's is awaited
    client_incoming(client).write(bytes(server.data_to_send()))
    client.unwrap()  # reads ours, answers with its own
    server.feed(client_outgoing(client))
    assert server.shutdown() is True
    server.close()


def test_abort_sends_nothing(pki, ctx):
    server, _ = memory_handshake(ctx, client_context(pki))
    server.abort()
    assert server.pending() == 0
    server.close()


def test_close_frees_the_ssl_object_once(pki, ctx):
    before = lib.mg_conn_live()
    server, _ = memory_handshake(ctx, client_context(pki))
    assert lib.mg_conn_live() == before + 1
    server.close()
    server.close()
    assert lib.mg_conn_live() == before


def test_unused_connection_is_freed_by_the_garbage_collector(ctx):
    before = lib.mg_conn_live()
    TLSStream(ctx)
    assert lib.mg_conn_live() == before


def client_outgoing(client: ssl.SSLObject) -> bytes:
    return client.outgoing.read()


def client_incoming(client: ssl.SSLObject) -> ssl.MemoryBIO:
    return client.incoming


def test_a_long_chain_leaves_in_one_piece(tmp_path, pki):
    """The server's whole first flight is taken at once (nginx raises its
    handshake buffer to 16 KiB for the same end)."""
    chain = tmp_path / "long-chain.pem"
    chain.write_text(pki.server_rsa.cert_pem + pki.intermediate.cert_pem * 40)
    body = f"ssl_certificate {chain}; ssl_certificate_key {pki.server_rsa.key_file};"
    ctx = context(tmp_path, pki, body, names=())
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context(pki).wrap_bio(incoming, outgoing, server_hostname="mx.test")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    server = TLSStream(ctx)
    server.feed(outgoing.read())
    assert server.do_handshake() is False
    flight = server.data_to_send()
    assert len(flight) > 16384 and server.pending() == 0
    incoming.write(bytes(flight))
    client.do_handshake()  # everything it needed came in that piece
    server.close()


def test_each_thread_has_its_own_input_buffer(ctx):
    """Event loops read sockets with the GIL released: connections of loops in two
    threads must not read into one buffer (a race the process-wide buffer had)."""
    import threading

    here = TLSStream(ctx)
    there = []
    thread = threading.Thread(target=lambda: there.append(TLSStream(ctx)))
    thread.start()
    thread.join()
    also_here = TLSStream(ctx)
    assert here.input is also_here.input  # one buffer per thread, shared by its connections
    assert there[0].input.obj is not here.input.obj
    for tls in (here, there[0], also_here):
        tls.close()
