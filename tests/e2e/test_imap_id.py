"""IMAP ID (RFC 2971) before login and the client's address to the backend, end to end
(mailgate's own; nginx answers ID with BAD): the answer from ``imap_id``, the list in
``Auth-IMAP-ID``, and Dovecot (``login_trusted_networks`` set to the proxy) logging the
client's address from the proxy's ID (``proxy_imap_id``) and POP3 XCLIENT
(``proxy_pop3_xclient``) instead of the proxy's.

The clients connect from 127.0.0.5, the proxy to Dovecot from 127.0.0.1: Dovecot names
the first only when it took the proxy's word for it.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.support.auth_http import DefaultPolicy
from tests.support.users import ALICE, DEFAULT_USERS

CLIENT_IP = "127.0.0.5"
THUNDERBIRD = b'("name" "Thunderbird" "version" "115.3.1" "x-originating-ip" "10.6.6.6")'

MAIL = """
    server_name mx.test;
    auth_http $auth_http;
    imap_id name mailgate vendor "Example Mail";
    server { listen 127.0.0.1:${port_imap}; protocol imap; proxy_imap_id on;
             auth_http_pass_imap_id on; }
    server { listen 127.0.0.1:${port_imap_plain}; protocol imap; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; proxy_pop3_xclient on; }
"""


@pytest.fixture
def id_gate(sut_impl, proxy_factory, embedded_factory):
    """mailgate (the binary, or embedded): nginx has no ID."""
    return embedded_factory() if sut_impl == "embedded" else proxy_factory(sut_impl)


@pytest.fixture(scope="module")
def trusting_dovecot(tmp_path_factory, port_allocator):
    """Dovecot that takes the client's address from a proxy on 127.0.0.1."""
    from tests.support.components import require
    from tests.support.dovecot import Dovecot

    require("dovecot")
    dovecot = Dovecot(tmp_path_factory.mktemp("dovecot-trusting"), port_allocator,
                      users=DEFAULT_USERS,
                      settings={"login_trusted_networks": "127.0.0.1/32",
                                "login_log_format_elements":
                                    "user=<%u> method=%m rip=%r rport=%b lip=%l %c"})
    dovecot.start()
    yield dovecot
    dovecot.stop()


def converse(address, lines: list[bytes], until: bytes) -> bytes:
    """Send ``lines`` from CLIENT_IP after the greeting; read until ``until`` is seen."""
    with socket.create_connection(address, timeout=10, source_address=(CLIENT_IP, 0)) as sock:
        received = b""
        deadline = time.monotonic() + 10
        while b"\r\n" not in received and time.monotonic() < deadline:
            received += sock.recv(4096)
        sock.sendall(b"".join(lines))
        while until not in received and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        return received


def dovecot_logins(dovecot, protocol: str) -> list[str]:
    """Dovecot's login lines of ``protocol`` so far."""
    return [line for line in dovecot.log_text().splitlines()
            if f"{protocol}-login: Info: Login:" in line]


def next_login(dovecot, protocol: str, before: int) -> str:
    """The first login line after the ``before`` ones (Dovecot logs it soon after)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = dovecot_logins(dovecot, protocol)
        if len(lines) > before:
            return lines[before]
        time.sleep(0.05)
    raise AssertionError(f"Dovecot logged no {protocol} login")


def test_id_answered_passed_to_auth_http_and_forwarded_to_dovecot(
        id_gate, trusting_dovecot, auth_server):
    before = len(dovecot_logins(trusting_dovecot, "imap"))
    auth_server.policy = DefaultPolicy(DEFAULT_USERS, {"imap": (
        trusting_dovecot.host, trusting_dovecot.imap_port)})
    id_gate.start(MAIL)
    received = converse(id_gate.address("imap"), [
        b"a1 ID " + THUNDERBIRD + b"\r\n",
        b'a2 LOGIN alice "%s"\r\n' % ALICE.password_bytes, b"a3 LOGOUT\r\n"], b"a3 OK")
    assert received.split(b"\r\n")[1:3] == [
        b'* ID ("name" "mailgate" "vendor" "Example Mail")', b"a1 OK completed"]
    assert b"a2 OK" in received
    (request,) = auth_server.requests
    assert request.header("Auth-IMAP-ID") == THUNDERBIRD.decode().replace(" ", "%20")
    assert request.header("Client-IP") == CLIENT_IP
    # Dovecot took the client's address and port from the proxy's ID, and the
    # client's own x-originating-ip was dropped
    login = next_login(trusting_dovecot, "imap", before)
    assert f"rip={CLIENT_IP}" in login and "10.6.6.6" not in login
    assert "rport=0," not in login


def test_without_proxy_imap_id_dovecot_sees_the_proxy(id_gate, trusting_dovecot,
                                                       auth_server):
    before = len(dovecot_logins(trusting_dovecot, "imap"))
    auth_server.policy = DefaultPolicy(DEFAULT_USERS, {"imap": (
        trusting_dovecot.host, trusting_dovecot.imap_port)})
    id_gate.start(MAIL)
    received = converse(id_gate.address("imap_plain"), [
        b"a1 ID NIL\r\n", b'a2 LOGIN alice "%s"\r\n' % ALICE.password_bytes,
        b"a3 LOGOUT\r\n"], b"a3 OK")
    assert b"a2 OK" in received
    assert auth_server.requests[0].header("Auth-IMAP-ID") is None
    login = next_login(trusting_dovecot, "imap", before)
    assert "rip=127.0.0.1," in login


def test_pop3_xclient_to_dovecot(id_gate, trusting_dovecot, auth_server):
    before = len(dovecot_logins(trusting_dovecot, "pop3"))
    auth_server.policy = DefaultPolicy(DEFAULT_USERS, {"pop3": (
        trusting_dovecot.host, trusting_dovecot.pop3_port)})
    id_gate.start(MAIL)
    received = converse(id_gate.address("pop3"), [
        b"USER alice\r\n", b"PASS %s\r\n" % ALICE.password_bytes, b"QUIT\r\n"],
        b"Logging out")
    assert received.count(b"+OK") >= 3
    login = next_login(trusting_dovecot, "pop3", before)
    assert f"rip={CLIENT_IP}" in login
