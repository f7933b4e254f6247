"""The auth_http client's connections (mailgate's own settings): keep-alive
(``auth_http_keepalive``: HTTP/1.1 on kept connections, nginx's HTTP/1.0 wire without it;
a kept connection the server closed costs one retry, never a login) and https
(``auth_http https://``, ``auth_http_ssl_*``), against the real test auth server."""

from __future__ import annotations

import asyncio
import time

import pytest

from mailgate.auth import AuthFacts
from mailgate.auth.http import AuthHttpClient
from mailgate.config import AuthHttpTarget
from mailgate.protocol.events import AuthInternalError, AuthOK
from mailgate.tls import TLSClientContext
from tests.support.auth_http import AuthHttpServer, CloseReply, RawReply, Reply

FACTS = AuthFacts(protocol="imap", method="plain", login=b"alice", password=b"secret pass",
                  login_attempt=1, client_ip="127.0.0.1")
OK = Reply([("Auth-Status", "OK"), ("Auth-Server", "127.0.0.1"), ("Auth-Port", "143"),
            ("Auth-Pass", "secret pass")])


def target(server: AuthHttpServer, name: str = "127.0.0.1") -> AuthHttpTarget:
    import socket
    return AuthHttpTarget(url=server.url, family=socket.AF_INET, address="127.0.0.1",
                          port=server.port, uri="/auth", host_header=name,
                          peer="127.0.0.1:%d" % server.port, tls=server.tls is not None)


@pytest.fixture
def auth(port_allocator):
    server = AuthHttpServer(port_allocator, lambda request: OK)
    server.start()
    yield server
    server.stop()
    assert not server.errors


def ask(client: AuthHttpClient, count: int = 1, pause: float = 0.0, concurrent: bool = False):
    """``count`` queries (one after the other, or all at once); (results, log lines).
    ``client.idle_at_end`` is how many connections were kept idle at the end."""
    logged: list[tuple[str, str]] = []
    idle: list[int] = []  # the kept connections at the end

    def log(level, message):
        logged.append((level, message))

    async def run():
        if concurrent:
            results = await asyncio.gather(*(client.query((), 5.0, FACTS, log)
                                             for _ in range(count)))
        else:
            results = []
            for i in range(count):
                if i and pause:
                    await asyncio.sleep(pause)
                results.append(await client.query((), 5.0, FACTS, log))
        idle.append(len(client._idle))
        client.close()
        return results

    results = asyncio.run(run())
    client.idle_at_end = idle[0]
    return results, logged


def test_without_keepalive_nginx_wire(auth):
    results, logged = ask(AuthHttpClient(target(auth)), 3)
    assert all(isinstance(r, AuthOK) for r in results) and logged == []
    assert auth.accepted == 3
    assert all(r.raw.startswith(b"GET /auth HTTP/1.0\r\n") for r in auth.requests)


def test_n_logins_over_one_kept_connection(auth):
    client = AuthHttpClient(target(auth), keepalive=4)
    results, logged = ask(client, 10)
    assert all(isinstance(r, AuthOK) for r in results) and logged == []
    assert auth.accepted == 1 and client.opened == 1 and len(auth.requests) == 10
    assert all(r.raw.startswith(b"GET /auth HTTP/1.1\r\n") for r in auth.requests)


def test_a_body_is_read_away_before_the_next_request(auth):
    auth.policy = lambda request: Reply(OK.headers, body=b"<html>ok</html>")
    results, logged = ask(AuthHttpClient(target(auth), keepalive=1), 3)
    assert all(isinstance(r, AuthOK) for r in results) and logged == []
    assert auth.accepted == 1


def test_an_answer_that_closes_is_not_kept(auth):
    auth.policy = lambda request: RawReply(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\n"
        b"Auth-Port: 143\r\nAuth-Pass: x\r\n\r\n")
    results, logged = ask(AuthHttpClient(target(auth), keepalive=1), 2)
    assert all(isinstance(r, AuthOK) for r in results) and logged == []
    assert auth.accepted == 2


def test_server_closing_idle_connections(auth):
    auth.idle_close = 0.1
    client = AuthHttpClient(target(auth), keepalive=2)
    results, logged = ask(client, 3, pause=0.5)
    assert all(isinstance(r, AuthOK) for r in results) and logged == []
    assert auth.accepted == 3


def test_server_closing_just_as_the_request_goes(auth):
    # the server closes each kept connection at once: every second request finds its
    # kept connection closed before any answer byte, and is sent again on a fresh one
    auth.idle_close = 0.001
    client = AuthHttpClient(target(auth), keepalive=2)
    results, logged = ask(client, 6, pause=0.05)
    assert all(isinstance(r, AuthOK) for r in results) and logged == []


def test_server_dying_between_requests(port_allocator):
    first = AuthHttpServer(port_allocator, lambda request: OK)
    first.start()
    client = AuthHttpClient(target(first), keepalive=2)
    logged = []

    async def run():
        results = [await client.query((), 5.0, FACTS, lambda *a: logged.append(a))]
        first.stop(release=False)
        second = AuthHttpServer(port_allocator, lambda request: OK, port=first.port)
        second.start()
        try:
            results.append(await client.query((), 5.0, FACTS, lambda *a: logged.append(a)))
        finally:
            client.close()
            second.stop()
        return results, second

    results, second = asyncio.run(run())
    assert all(isinstance(r, AuthOK) for r in results) and logged == []
    assert second.accepted == 1 and len(second.requests) == 1


def test_idle_connections_are_closed_after_keepalive_timeout(auth):
    client = AuthHttpClient(target(auth), keepalive=2, keepalive_timeout=0.1)
    results, logged = ask(client, 2, pause=0.4)
    assert all(isinstance(r, AuthOK) for r in results) and logged == []
    assert auth.accepted == 2


def test_at_most_keepalive_idle_connections(auth):
    auth.policy = lambda request: Reply(OK.headers, delay=0.2)
    client = AuthHttpClient(target(auth), keepalive=1)
    results, _ = ask(client, 3, concurrent=True)
    assert all(isinstance(r, AuthOK) for r in results)
    assert auth.accepted == 3 and client.idle_at_end == 1


def test_a_timeout_closes_the_connection(auth):
    auth.policy = lambda request: Reply(OK.headers, delay=1.0)
    client = AuthHttpClient(target(auth), keepalive=2)
    logged = []

    async def run():
        result = await client.query((), 0.2, FACTS, lambda *a: logged.append(a))
        assert not client._idle
        return result

    assert isinstance(asyncio.run(run()), AuthInternalError)
    assert logged == [("error", "auth http server 127.0.0.1:%d timed out "
                                "(110: Connection timed out)" % auth.port)]


# -- https -------------------------------------------------------------------------------

@pytest.fixture
def https(port_allocator, pki):
    server = AuthHttpServer(port_allocator, lambda request: OK,
                            tls=(str(pki.server_rsa.cert), str(pki.server_rsa.key_file)))
    server.start()
    yield server
    server.stop()


def test_https_with_the_right_ca(https, pki):
    context = TLSClientContext(verify=True, trusted=str(pki.ca.cert), verify_depth=100)
    client = AuthHttpClient(target(https), keepalive=2, tls_context=context, ssl_name="mx.test")
    results, logged = ask(client, 3)
    assert all(isinstance(r, AuthOK) for r in results) and logged == []
    assert https.accepted == 1
    assert https.requests[0].password == "secret pass"


def test_https_with_the_address_as_name(https, pki):
    context = TLSClientContext(verify=True, trusted=str(pki.ca.cert), verify_depth=100)
    results, logged = ask(AuthHttpClient(target(https), tls_context=context))
    assert isinstance(results[0], AuthOK) and logged == []


@pytest.mark.parametrize("trusted,name,reason", [
    ("client_self_signed", "mx.test",
     "upstream SSL certificate verify error: (20:unable to get local issuer certificate)"),
    ("ca", "other.test", 'upstream SSL certificate does not match "other.test"'),
])
def test_https_refused_certificate(https, pki, trusted, name, reason):
    context = TLSClientContext(verify=True, trusted=str(getattr(pki, trusted).cert),
                               verify_depth=100)
    results, logged = ask(AuthHttpClient(target(https), tls_context=context, ssl_name=name))
    assert isinstance(results[0], AuthInternalError)
    assert logged == [("error", "auth http server 127.0.0.1:%d: %s" % (https.port, reason))]
    assert https.requests == []  # the password never left


def test_https_without_verification(https):
    results, logged = ask(AuthHttpClient(target(https), tls_context=TLSClientContext()))
    assert isinstance(results[0], AuthOK) and logged == []


def test_kept_connection_closed_before_the_answer_is_retried_once(auth):
    answers = iter([OK, CloseReply(), OK, CloseReply(), CloseReply()])
    auth.policy = lambda request: next(answers)
    client = AuthHttpClient(target(auth), keepalive=2)
    results, logged = ask(client, 3)
    # 1: answered; 2: its kept connection closes unanswered, sent again on a fresh one;
    # 3: the same, and the fresh connection closes too: that one is not retried
    assert [type(r) for r in results] == [AuthOK, AuthOK, AuthInternalError]
    assert logged == []  # closed before the headers: nginx logs nothing either
    assert auth.accepted == 3 and len(auth.requests) == 5
