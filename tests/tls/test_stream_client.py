"""TLSStream on the client side (TLSClientContext), against a server-side TLSStream over
memory: SNI, verification of the server's chain and name as ngx_stream_proxy_module
takes it (proxy_ssl_verify), a client certificate, and resuming a session."""

from __future__ import annotations

import pytest
from tests.tls.conf import context
from mailgate.tls import TLSClientContext, TLSHandshakeError, TLSStream


def pump(client: TLSStream, server: TLSStream, rounds: int = 10) -> None:
    """Run both handshakes to their end, handing each side's records to the other."""
    for _ in range(rounds):
        done_client = client.do_handshake()
        server.feed(client.data_to_send())
        done_server = server.do_handshake()
        client.feed(server.data_to_send())
        if done_client and done_server:
            # TLS 1.3: the tickets the server sent after its Finished
            client.recv_into(bytearray(100))
            return
    raise AssertionError("the handshake did not end")


@pytest.fixture
def server_ctx(tmp_path, pki):
    return context(tmp_path, pki, names=("ecdsa",))


def test_handshake_sni_and_records_both_ways(server_ctx, pki):
    client = TLSStream(TLSClientContext(), server_name="mx.test")
    server = TLSStream(server_ctx)
    pump(client, server)
    assert server.server_name == "mx.test"
    assert client.protocol == server.protocol == "TLSv1.3"
    server.feed(client.encrypt(b"a1 LOGIN x y\r\n"))
    buf = bytearray(100)
    assert buf[:server.recv_into(buf)] == b"a1 LOGIN x y\r\n"
    client.feed(server.encrypt(b"a1 OK\r\n"))
    assert buf[:client.recv_into(buf)] == b"a1 OK\r\n"


def test_no_sni_without_a_name(server_ctx):
    client, server = TLSStream(TLSClientContext()), TLSStream(server_ctx)
    pump(client, server)
    assert server.server_name is None


def test_verified_server(server_ctx, pki):
    ctx = TLSClientContext(verify=True, trusted=str(pki.ca.cert), verify_depth=2)
    client = TLSStream(ctx, server_name="mx.test", verify_name="mx.test")
    pump(client, TLSStream(server_ctx))
    assert client.check_server_certificate("mx.test") is None


def test_wrong_ca(server_ctx, pki):
    ctx = TLSClientContext(verify=True, trusted=str(pki.client_self_signed.cert), verify_depth=2)
    client = TLSStream(ctx, verify_name="mx.test")
    pump(client, TLSStream(server_ctx))
    assert client.check_server_certificate("mx.test") == (
        "upstream SSL certificate verify error: (20:unable to get local issuer certificate)")


def test_wrong_name(server_ctx, pki):
    ctx = TLSClientContext(verify=True, trusted=str(pki.ca.cert), verify_depth=2)
    client = TLSStream(ctx, verify_name="other.test")
    pump(client, TLSStream(server_ctx))
    assert client.check_server_certificate("other.test") == (
        'upstream SSL certificate does not match "other.test"')


def test_depth_too_small(server_ctx, pki):
    ctx = TLSClientContext(verify=True, trusted=str(pki.ca.cert), verify_depth=0)
    client = TLSStream(ctx, verify_name="mx.test")
    pump(client, TLSStream(server_ctx))
    # the root is two steps above the server's certificate: not reached within depth 0
    assert client.check_server_certificate("mx.test") == (
        "upstream SSL certificate verify error: (20:unable to get local issuer certificate)")


def test_client_certificate_presented(tmp_path, pki):
    server_ctx = context(tmp_path, pki, "        ssl_verify_client on;\n"
                         f"        ssl_client_certificate {pki.ca.cert};\n")
    ctx = TLSClientContext(certificate=str(pki.client.cert), certificate_key=str(pki.client.key_file))
    client, server = TLSStream(ctx), TLSStream(server_ctx)
    pump(client, server)
    assert server.check_client_certificate().ok
    assert server.client_certificate().subject.startswith("CN=client one")


def test_protocols_that_do_not_meet(server_ctx):
    client = TLSStream(TLSClientContext(protocols=("TLSv1.1",)))
    server = TLSStream(server_ctx)
    with pytest.raises(TLSHandshakeError):
        pump(client, server)


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_session_resumed_on_the_next_connection(tmp_path, pki, version):
    server_ctx = context(tmp_path, pki, f"        ssl_protocols {version};\n"
                         "        ssl_session_cache builtin:100;\n")
    ctx = TLSClientContext(protocols=(version,))
    first = TLSStream(ctx)
    pump(first, TLSStream(server_ctx))
    session = first.session()
    assert session is not None and session.resumable
    again = TLSStream(ctx, session=session)
    server = TLSStream(server_ctx)
    pump(again, server)
    assert again.session_reused and server.session_reused
