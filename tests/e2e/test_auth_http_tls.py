"""auth_http over HTTPS and kept alive, through the proxy (mailgate's ``auth_http
https://``, ``auth_http_ssl_*``, ``auth_http_keepalive*``): real clients (imaplib,
poplib, curl) log in to Dovecot while the test auth server counts the connections it
accepted — one for many logins; none lost when it closes idle connections or dies
between two requests; none at all with the wrong CA (the password never leaves)."""

from __future__ import annotations

import time

import pytest

from tests.e2e.scripts import INTERNAL_ERROR, login_script
from tests.support.auth_http import AuthHttpServer, DefaultPolicy
from tests.support.clients import curl, curl_url, imap_login, open_imap, open_pop3
from tests.support.transcript import run_script
from tests.support.users import ALICE, BOB, DEFAULT_USERS

pytestmark = pytest.mark.requires("dovecot")

CONFIG = """
    auth_http %s;
    %s
    server { listen 127.0.0.1:${port_imap}; protocol imap; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; }
"""


@pytest.fixture(params=("mailgate", "embedded"))
def sut(request, proxy_factory, embedded_factory):
    return embedded_factory() if request.param == "embedded" else proxy_factory(request.param)


@pytest.fixture
def https_auth(port_allocator, pki, dovecot):
    policy = DefaultPolicy(DEFAULT_USERS, {"imap": (dovecot.host, dovecot.imap_port),
                                           "pop3": (dovecot.host, dovecot.pop3_port)})
    server = AuthHttpServer(port_allocator, policy,
                            tls=(str(pki.server_rsa.cert), str(pki.server_rsa.key_file)))
    server.start()
    yield server
    server.stop()
    assert not server.errors


def imap_session(address, user=ALICE) -> None:
    with open_imap(*address) as imap:
        imap_login(imap, user)
        assert imap.select("INBOX", readonly=True)[0] == "OK"


def test_n_logins_over_one_kept_https_connection(sut, https_auth, pki):
    sut.start(CONFIG % (https_auth.url, f"auth_http_keepalive 4; auth_http_ssl_name mx.test; "
                                        f"auth_http_ssl_trusted_certificate {pki.ca.cert};"))
    for user in (ALICE, BOB, ALICE, BOB, ALICE):
        imap_session(sut.address("imap"), user)
    pop3 = open_pop3(*sut.address("pop3"))
    pop3.user(ALICE.login)
    pop3.pass_(ALICE.password)
    pop3.quit()
    result = curl(curl_url("imap", *sut.address("imap"), "INBOX"), pki=pki, user=ALICE).check()
    assert result.returncode == 0
    assert len(https_auth.requests) == 7
    assert https_auth.accepted == 1  # both servers share the worker's pool: same auth server
    assert all(r.raw.startswith(b"GET /auth HTTP/1.1\r\n") for r in https_auth.requests)
    assert [line for line in sut.log_lines("error") if "[error]" in line] == []


def test_https_without_keepalive(sut, https_auth, pki):
    sut.start(CONFIG % (https_auth.url, f"auth_http_ssl_trusted_certificate {pki.ca.cert}; "
                                        "auth_http_ssl_name mx.test;"))
    imap_session(sut.address("imap"))
    imap_session(sut.address("imap"))
    assert https_auth.accepted == 2
    assert all(r.raw.startswith(b"GET /auth HTTP/1.0\r\n") for r in https_auth.requests)


@pytest.mark.parametrize("setting,reason", [
    ("auth_http_ssl_trusted_certificate {self_signed}; auth_http_ssl_name mx.test;",
     "upstream SSL certificate verify error: (20:unable to get local issuer certificate)"),
    ("auth_http_ssl_trusted_certificate {ca}; auth_http_ssl_name other.test;",
     'upstream SSL certificate does not match "other.test"'),
])
def test_https_with_a_certificate_refused(sut, https_auth, pki, setting, reason):
    sut.start(CONFIG % (https_auth.url, setting.format(self_signed=pki.client_self_signed.cert,
                                                       ca=pki.ca.cert)))
    replies = run_script(sut.address("imap"), login_script("imap", b"alice", b"alice-secret")).replies()
    assert replies[-1] == INTERNAL_ERROR["imap"]
    (line,) = [line for line in sut.log_lines("error") if "[error]" in line]
    assert f"auth http server 127.0.0.1:{https_auth.port}: {reason} while in http auth state" in line
    assert https_auth.requests == [] and "alice-secret" not in sut.error_log()


def test_https_verify_off(sut, https_auth):
    sut.start(CONFIG % (https_auth.url, "auth_http_ssl_verify off;"))
    imap_session(sut.address("imap"))


def test_server_closing_idle_kept_connections(sut, auth_server, dovecot):
    auth_server.policy = DefaultPolicy(DEFAULT_USERS, {"imap": (dovecot.host, dovecot.imap_port)})
    auth_server.idle_close = 0.1
    sut.start(CONFIG % ("$auth_http", "auth_http_keepalive 2;"))
    for _ in range(3):
        imap_session(sut.address("imap"))
        time.sleep(0.4)
    assert auth_server.accepted == 3 and len(auth_server.requests) == 3
    assert [line for line in sut.log_lines("error") if "[error]" in line] == []


def test_server_dying_between_requests(sut, auth_server, dovecot, port_allocator):
    policy = DefaultPolicy(DEFAULT_USERS, {"imap": (dovecot.host, dovecot.imap_port)})
    auth_server.policy = policy
    sut.start(CONFIG % ("$auth_http", "auth_http_keepalive 2;"))
    imap_session(sut.address("imap"))
    auth_server.stop(release=False)
    again = AuthHttpServer(port_allocator, policy, port=auth_server.port)
    again.start()
    try:
        for _ in range(3):
            imap_session(sut.address("imap"))
    finally:
        again.stop(release=False)
    assert again.accepted == 1 and len(again.requests) == 3
    assert [line for line in sut.log_lines("error") if "[error]" in line] == []
