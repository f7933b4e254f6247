"""The auth_http server: raw recording, the default policy, and every answer shape."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time

import pytest

from tests.support.auth_http import (
    AuthHttpServer,
    AuthRequest,
    CloseReply,
    DefaultPolicy,
    NoReply,
    RawReply,
    Reply,
    SequencePolicy,
    unescape,
)
from tests.support.users import ALICE, DEFAULT_USERS

BACKENDS = {"imap": ("127.0.0.1", 1143), "pop3": ("127.0.0.1", 1110), "smtp": ("127.0.0.1", 1025)}


def _request(**headers: str) -> bytes:
    lines = [b"GET /auth HTTP/1.0", b"Host: 127.0.0.1"]
    lines += [f"{k.replace('_', '-')}: {v}".encode() for k, v in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _exchange(server: AuthHttpServer, raw: bytes, timeout: float = 5.0) -> tuple[bytes, float]:
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer, time.monotonic() - started


@pytest.fixture
def server(port_allocator):
    instance = AuthHttpServer(port_allocator, DefaultPolicy(DEFAULT_USERS, BACKENDS))
    instance.start()
    yield instance
    instance.stop()


def test_ok_for_a_known_user_and_the_raw_request_is_recorded(server):
    raw = _request(
        Auth_Method="plain",
        Auth_User="bob",
        Auth_Pass="secret%20pass",
        Auth_Protocol="pop3",
        Auth_Login_Attempt="1",
        Client_IP="127.0.0.1",
    )
    answer, _ = _exchange(server, raw)
    assert answer == (
        b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\n"
        b"Auth-Port: 1110\r\nAuth-Pass: secret pass\r\n\r\n"
    )
    [request] = server.requests
    assert request.raw == raw and request.complete
    assert request.generated_headers() == list(request.header_names)
    assert "Auth-Salt" not in request.header_names
    assert (request.login, request.password, request.protocol, request.attempt) == (
        "bob",
        "secret pass",
        "pop3",
        1,
    )
    assert request.header("auth-pass") == "secret%20pass"


def test_failure_with_wait_and_smtp_error_code(server):
    server.policy = DefaultPolicy(DEFAULT_USERS, BACKENDS, wait=3)
    answer, _ = _exchange(
        server,
        _request(Auth_Method="plain", Auth_User="alice", Auth_Pass="bad", Auth_Protocol="smtp"),
    )
    assert answer == (
        b"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 3\r\n"
        b"Auth-Error-Code: 535 5.7.8\r\n\r\n"
    )
    answer, _ = _exchange(
        server,
        _request(Auth_Method="plain", Auth_User="nobody", Auth_Pass="x", Auth_Protocol="imap"),
    )
    assert b"Auth-Error-Code" not in answer and b"Invalid login or password" in answer


@pytest.mark.parametrize("method", ["apop", "cram-md5"])
def test_salted_methods_are_verified(server, method):
    salt = "<1896.697170952@mx.test>"
    if method == "apop":
        good = hashlib.md5((salt + ALICE.password).encode()).hexdigest()
    else:
        good = hmac.new(ALICE.password.encode(), salt.encode(), hashlib.md5).hexdigest()
    for digest, ok in ((good, True), ("0" * 32, False)):
        answer, _ = _exchange(
            server,
            _request(
                Auth_Method=method,
                Auth_User="alice",
                Auth_Pass=digest,
                Auth_Salt=salt,
                Auth_Protocol="pop3",
            ),
        )
        assert (b"Auth-Status: OK" in answer) is ok
        assert (f"Auth-Pass: {ALICE.password}".encode() in answer) is ok


def test_external_needs_a_verified_certificate_and_none_always_passes(server):
    for verify, ok in (
        ("SUCCESS", True),
        ("NONE", False),
        ("FAILED:self-signed certificate", False),
    ):
        raw = _request(
            Auth_Method="external",
            Auth_User="alice",
            Auth_Pass="",
            Auth_Protocol="imap",
            Auth_SSL_Verify=verify,
        )
        assert (b"Auth-Status: OK" in _exchange(server, raw)[0]) is ok
    answer, _ = _exchange(
        server, _request(Auth_Method="none", Auth_User="", Auth_Pass="", Auth_Protocol="smtp")
    )
    assert answer == (
        b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 1025\r\n\r\n"
    )


def test_raw_split_delayed_and_no_status_line_answers(server):
    server.policy = lambda request: RawReply(
        b"Auth-Status: OK\nAuth-Server: 127.0.0.1\n\n", chunks=3
    )
    answer, _ = _exchange(server, _request(Auth_Method="plain"))
    assert answer == b"Auth-Status: OK\nAuth-Server: 127.0.0.1\n\n"
    server.policy = lambda request: Reply([("Auth-Status", "OK")], status_line=None, delay=0.3)
    answer, took = _exchange(server, _request(Auth_Method="plain"))
    assert answer == b"Auth-Status: OK\r\n\r\n" and took >= 0.3
    oversized = Reply([("X-Filler", "x" * 2000), ("Auth-Status", "OK")])
    server.policy = lambda request: oversized
    answer, _ = _exchange(server, _request(Auth_Method="plain"))
    assert len(answer) > 2000


def test_close_without_answer_and_never_answering(server):
    server.policy = lambda request: CloseReply()
    assert _exchange(server, _request(Auth_Method="plain"))[0] == b""
    server.policy = lambda request: NoReply()
    with pytest.raises(socket.timeout):
        _exchange(server, _request(Auth_Method="plain"), timeout=0.3)
    assert len(server.requests) == 2


def test_sequence_wait_then_ok(server):
    default = server.policy
    server.policy = SequencePolicy(
        [Reply([("Auth-Status", "WAIT"), ("Auth-Wait", 1)])], then=default
    )
    raw = _request(
        Auth_Method="plain", Auth_User="alice", Auth_Pass="alice-secret", Auth_Protocol="imap"
    )
    assert b"Auth-Status: WAIT" in _exchange(server, raw)[0]
    assert b"Auth-Status: OK" in _exchange(server, raw)[0]
    assert len(server.wait_for_requests(2)) == 2


def test_a_broken_policy_is_recorded_and_incomplete_requests_too(server):
    def broken(request):
        raise ValueError("policy bug")

    server.policy = broken
    assert _exchange(server, _request(Auth_Method="plain"))[0] == b""
    assert isinstance(server.errors[0], ValueError)
    server.errors.clear()
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(b"GET /auth HTTP/1.0\r\nHost: x\r\n")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b""
    assert server.wait_for_requests(2)[1].complete is False


def test_unescape():
    assert unescape("secret%20pass%25%0A") == "secret pass%\n"
    assert unescape("j\u00f6rg") == "jörg"


def test_generated_headers_checks_nginx_order():
    def parse(*names):
        raw = b"GET /auth HTTP/1.0\r\n" + b"".join(f"{n}: x\r\n".encode() for n in names) + b"\r\n"
        return AuthRequest.parse(raw, ("127.0.0.1", 1), True)

    good = parse("Host", "Auth-Method", "Auth-User", "Auth-Pass", "Auth-Protocol", "X-Extra")
    assert good.generated_headers() == [
        "Host",
        "Auth-Method",
        "Auth-User",
        "Auth-Pass",
        "Auth-Protocol",
    ]
    with pytest.raises(AssertionError, match="order"):
        parse("Host", "Auth-User", "Auth-Method").generated_headers()
    with pytest.raises(AssertionError, match="extra header"):
        parse("Host", "X-Extra", "Auth-Method").generated_headers()
