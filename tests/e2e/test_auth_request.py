"""The auth_http request, byte for byte as nginx sends it: one client scenario run
through nginx and through mailgate on the same configuration, the requests compared
(salts masked: they are random).  Header order, escaping, Auth-Salt, Client-Host,
Auth-SMTP-*, Auth-SSL-* with client certificates, auth_http_header extras,
auth_http_pass_client_cert, and the inbound PROXY protocol with its headers."""

from __future__ import annotations

import difflib
import re
import smtplib

import pytest

from tests.e2e.gates import wait_for_log
from tests.e2e.scripts import EHLO_DONE, proxy_v2
from tests.support.clients import client_context, imap_login, open_imap, open_pop3, open_smtp
from tests.support.configs import TLS
from tests.support.transcript import ReadEOF, ReadLine, ReadTagged, run_script
from tests.support.users import ALICE, BOB, JOERG

MAIL = """
    server_name mx.test;
    auth_http $auth_http;
    auth_http_header X-Custom "hello world";
    auth_http_header X-Second two;
""" + TLS + """
    ssl_client_certificate $ca;
    server { listen 127.0.0.1:${port_imap}; protocol imap; starttls on;
             imap_auth plain login cram-md5 external; }
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; ssl_verify_client optional;
             auth_http_pass_client_cert on; auth_http_header X-Server imaps; }
    server { listen 127.0.0.1:${port_imaps_noca} ssl; protocol imap;
             ssl_verify_client optional_no_ca; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; starttls on;
             pop3_auth plain apop cram-md5 external; }
    server { listen 127.0.0.1:${port_smtp}; protocol smtp; starttls on;
             smtp_auth plain login cram-md5 none; }
    server { listen 127.0.0.1:${port_pp} proxy_protocol; protocol imap;
             set_real_ip_from 127.0.0.1; }
    server { listen 127.0.0.1:${port_pp_norealip} proxy_protocol; protocol pop3;
             set_real_ip_from 192.0.2.0/24; }
    server { listen 127.0.0.1:${port_pp_smtp} proxy_protocol; protocol smtp;
             set_real_ip_from 127.0.0.0/8; smtp_auth none; }
"""

SALTED = [
    (re.compile(rb"Auth-Salt: <[^>]+>\r\n"), b"Auth-Salt: <SALT>\r\n"),
    (re.compile(rb"Auth-Pass: [0-9a-f]{32}\r\n"), b"Auth-Pass: <DIGEST>\r\n"),
]


def _masked(raw: bytes) -> bytes:
    for pattern, replacement in SALTED:
        raw = pattern.sub(replacement, raw)
    return raw


# -- the scenarios: what one client does against a proxy -------------------------------


def imap_escapes(proxy, pki):
    with open_imap(*proxy.address("imap")) as imap:
        imap_login(imap, BOB)  # a space in the password: %20
    # bytes nginx escapes (controls, space, %) and those it does not (0x7F, >= 0x80),
    # through IMAP literals
    run_script(proxy.address("imap"), [
        ReadLine(), b"a1 LOGIN {6}\r\n", ReadLine(), b"al%ce\t {8}\r\n", ReadLine(),
        b"p\x01 %\x7f\xff\xc3\xa9\r\n", ReadTagged(b"a1"), b"a2 LOGOUT\r\n", ReadEOF()])


def imap_authenticate(proxy, pki):
    with open_imap(*proxy.address("imap")) as imap:
        imap.authenticate("PLAIN",
                          lambda _: b"\0" + JOERG.login_bytes + b"\0" + JOERG.password_bytes)
    with open_imap(*proxy.address("imap")) as imap:
        imap.login_cram_md5(ALICE.login, ALICE.password)
    run_script(proxy.address("imap"), [
        ReadLine(), b"a1 AUTHENTICATE LOGIN\r\n", ReadLine(), b"Ym9i\r\n", ReadLine(),
        b"c2VjcmV0IHBhc3M=\r\n", ReadTagged(b"a1"), b"a2 LOGOUT\r\n", ReadEOF()])


def imap_starttls(proxy, pki):
    context = client_context(pki)
    with open_imap(*proxy.address("imap"), security="starttls", context=context) as imap:
        imap_login(imap, ALICE)


def imaps_client_certificate(proxy, pki):
    for cert in (pki.client, pki.client_via_intermediate, None):
        context = client_context(pki, client_cert=cert)
        with open_imap(*proxy.address("imaps"), security="ssl", context=context) as imap:
            imap_login(imap, ALICE)


def imaps_self_signed_without_ca_check(proxy, pki):
    context = client_context(pki, client_cert=pki.client_self_signed)
    with open_imap(*proxy.address("imaps_noca"), security="ssl", context=context) as imap:
        imap_login(imap, ALICE)


def imap_external(proxy, pki):
    run_script(proxy.address("imap"), [
        ReadLine(), b"a1 AUTHENTICATE EXTERNAL\r\n", ReadLine(), b"YWxpY2U=\r\n", ReadEOF()])


def pop3_logins(proxy, pki):
    client = open_pop3(*proxy.address("pop3"))
    client.apop(ALICE.login, ALICE.password)
    client.quit()
    client = open_pop3(*proxy.address("pop3"), security="starttls", context=client_context(pki))
    client.user(JOERG.login)
    client.pass_(JOERG.password)
    client.quit()
    # USER and PASS keep their inner and trailing spaces
    run_script(proxy.address("pop3"), [
        ReadLine(), b"USER  bob \r\n", ReadLine(), b"PASS secret pass  \r\n", ReadEOF()])


def smtp_logins(proxy, pki):
    with open_smtp(*proxy.address("smtp")) as client:
        client.login(ALICE.login, ALICE.password)  # smtplib prefers CRAM-MD5
    context = client_context(pki)
    with open_smtp(*proxy.address("smtp"), security="starttls", context=context) as client:
        client.ehlo("client.test")
        client.login(BOB.login, BOB.password, initial_response_ok=True)


def smtp_none(proxy, pki):
    with smtplib.SMTP(*proxy.address("smtp"), local_hostname="relay.example", timeout=10) as client:
        client.ehlo()
        client.sendmail("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\nhi\r\n")
    # verbatim MAIL/RCPT lines, with their spacing, and a plain HELO
    run_script(proxy.address("smtp"), [
        ReadLine(), b"HELO  helo.example\r\n", ReadLine(), b"MAIL FROM:<a@x>  SIZE=10\r\n",
        ReadLine(), b"RCPT  TO:<b@y>\r\n", ReadLine(), b"QUIT\r\n", ReadEOF()])


def proxy_protocol_v1(proxy, pki):
    for header in (b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 143\r\n",
                   b"PROXY TCP6 2001:db8::7 2001:db8::1 40001 143\r\n",
                   b"PROXY TCP4 a.b.c.d 198.51.100.1 40000 143\r\n",  # nginx checks characters only
                   b"PROXY UNKNOWN\r\n"):
        run_script(proxy.address("pp"), [
            header, ReadLine(), b"a1 LOGIN alice alice-secret\r\n", ReadTagged(b"a1"),
            b"a2 LOGOUT\r\n", ReadEOF()])
    # the PROXY header is not from a set_real_ip_from address: Client-IP stays
    run_script(proxy.address("pp_norealip"), [
        b"PROXY TCP4 192.0.2.8 198.51.100.1 40002 110\r\n", ReadLine(),
        b"USER alice\r\n", ReadLine(), b"PASS alice-secret\r\n", ReadLine(), b"QUIT\r\n",
        ReadEOF()])


def proxy_protocol_v2(proxy, pki):
    tlv = bytes([0x04, 0x00, 0x03]) + b"abc"  # a NOOP TLV: kept, not used by mail
    for header in (proxy_v2("192.0.2.9", "198.51.100.1", 40003, 143, tlvs=tlv),
                   proxy_v2("2001:db8::9", "2001:db8::1", 40004, 143),
                   proxy_v2("192.0.2.10", "198.51.100.1", 40005, 143, command=0x20)):
        run_script(proxy.address("pp"), [
            header, ReadLine(), b"a1 LOGIN alice alice-secret\r\n", ReadTagged(b"a1"),
            b"a2 LOGOUT\r\n", ReadEOF()])
    run_script(proxy.address("pp_smtp"), [
        proxy_v2("2001:db8::11", "2001:db8::1", 40006, 25), ReadLine(),
        b"EHLO relay.example\r\n", EHLO_DONE, b"MAIL FROM:<a@x>\r\n", ReadLine(),
        b"RCPT TO:<b@y>\r\n", ReadLine(), b"QUIT\r\n", ReadEOF()])


SCENARIOS = [
    imap_escapes, imap_authenticate, imap_starttls, imaps_client_certificate,
    imaps_self_signed_without_ca_check, imap_external, pop3_logins,
    smtp_logins, smtp_none,
    proxy_protocol_v1,
    proxy_protocol_v2,
]


def _name(scenario) -> str:
    return getattr(scenario, "values", [scenario])[0].__name__


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[_name(s) for s in SCENARIOS])
def test_requests_match_nginx(pair, auth_server, pki, scenario, dovecot, smtp_backend):
    nginx, mailgate = pair
    scenario(nginx.start(MAIL), pki)
    count = len(auth_server.requests)
    assert count
    scenario(mailgate.start(MAIL), pki)
    requests = auth_server.wait_for_requests(2 * count)
    assert len(requests) == 2 * count, "mailgate asked a different number of times"
    for reference, ours in zip(requests[:count], requests[count:]):
        reference.generated_headers()  # in nginx's order, extras last
        assert_same_request(reference.raw, ours.raw)


def assert_same_request(reference: bytes, ours: bytes) -> None:
    """Equal after masking salts; the message is a line diff."""
    left, right = _masked(reference), _masked(ours)
    if left != right:
        diff = difflib.unified_diff([repr(l) for l in left.split(b"\r\n")],
                                    [repr(l) for l in right.split(b"\r\n")],
                                    "nginx", "mailgate", lineterm="")
        raise AssertionError("auth requests differ:\n" + "\n".join(diff))


# -- single facts, on every implementation ------------------------------------------------


def test_smtp_sends_client_host_without_a_resolver(gate, auth_server, smtp_backend):
    with open_smtp(*gate.start(MAIL).address("smtp")) as client:
        client.login(ALICE.login, ALICE.password)
    [request] = auth_server.requests
    assert request.header("Client-Host") == "[UNAVAILABLE]"
    assert request.header_names.index("Client-Host") == request.header_names.index("Client-IP") + 1


def test_auth_salt_for_external_on_a_salted_pop3_server(gate, auth_server):
    """Debian's 1.22.1 sends Auth-Salt for any method but plain once a salt exists
    (the POP3 greeting made one); 1.29.1+ only for apop and cram-md5 (nginx commit
    9c02c84a7), which mailgate follows (docs/differences.md#current-nginx-over-122)."""
    transcript = run_script(gate.start(MAIL).address("pop3"), [
        ReadLine(), b"AUTH EXTERNAL YWxpY2U=\r\n", ReadEOF()])
    salt = re.search(rb"<[^>]+>", transcript.replies()[0]).group().decode()
    [request] = auth_server.requests
    assert request.auth_method == "external" and request.login == "alice"
    assert request.salt == (salt if gate.name == "nginx" else None)


def test_inbound_proxy_v2_window(gate, auth_server):
    """nginx 1.22 peeks at 107 bytes for the PROXY header, 1.23.3+ at 4096, as mailgate
    does (ngx_mail_proxy_protocol_handler(); docs/differences.md#current-nginx-over-122):
    a v2 header with 200 bytes of TLVs is too large for 1.22."""
    header = proxy_v2("192.0.2.9", "198.51.100.1", 40003, 143,
                      tlvs=bytes([0x04, 0x00, 200]) + b"x" * 200)
    transcript = run_script(gate.start(MAIL).address("pp"),
                            [header, ReadLine(), b"a1 LOGOUT\r\n", ReadEOF()])
    if gate.name == "nginx":
        # closed with the peeked header unread: a reset, or an end if the client was quick
        assert transcript.replies() == []
        assert transcript.closed_by_server or transcript.events[1].data == b"ConnectionResetError"
        wait_for_log(gate, "header is too large while reading PROXY protocol", "error")
    else:
        assert transcript.replies()[0] == b"* OK IMAP4 ready\r\n"
