"""End to end through each proxy of ``--mail-proxy`` (by default nginx and the mailgate
binary): real clients, Dovecot and the SMTP backend behind, the auth_http server beside."""

from __future__ import annotations

import pytest

from tests.support.clients import (
    client_context,
    curl,
    curl_url,
    imap_fetch,
    imap_login,
    open_imap,
    open_pop3,
    open_smtp,
    pop3_retr,
    s_client,
)
from tests.support.messages import make_message
from tests.support.transcript import (
    MASK_SALTS,
    ReadEOF,
    ReadLine,
    ReadTagged,
    ReadUntil,
    StartTLS,
    run_script,
)
from tests.support.users import ALICE, BOB, BULK, JOERG

pytestmark = pytest.mark.nginx

MAIL = """
    server_name mx.test;
    auth_http $auth_http;
    auth_http_header X-Custom "hello world";
    ssl_certificate $rsa_cert;
    ssl_certificate_key $rsa_key;
    ssl_certificate $ecdsa_cert;
    ssl_certificate_key $ecdsa_key;
    ssl_protocols TLSv1.2 TLSv1.3;   # 1.22's default lacks TLSv1.3

    server { listen 127.0.0.1:${port_imap}; protocol imap; starttls on; }
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; starttls on; pop3_auth plain apop cram-md5; }
    server { listen 127.0.0.1:${port_pop3s} ssl; protocol pop3; }
    server { listen 127.0.0.1:${port_smtp}; protocol smtp; starttls on; xclient on; smtp_auth login plain; }
    server { listen 127.0.0.1:${port_smtps} ssl; protocol smtp; xclient off; smtp_auth login plain; }
    server { listen 127.0.0.1:${port_smtp_none}; protocol smtp; xclient on; smtp_auth none; }
"""

SMTP_BODY = b"Subject: relay\r\n\r\n.leading dot\r\nline with a bare\nLF\r\n.\r\n..\r\nlast\r\n"
"""DATA as the backend must record it (smtplib dot-stuffs it; no dot follows the bare LF,
because smtplib would stuff that one too while RFC 5321 does not)."""


@pytest.fixture
def running(proxy):
    return proxy.start(MAIL)


# -- IMAP -------------------------------------------------------------------------------


def test_imap_login_select_fetch_equals_the_stored_bytes(running, dovecot):
    with open_imap(*running.address("imap")) as imap:
        imap_login(imap, ALICE)
        assert imap.select("INBOX", readonly=True)[0] == "OK"
        for number, stored in enumerate(dovecot.delivered(ALICE.login), 1):
            assert imap_fetch(imap, str(number)) == stored.data


@pytest.mark.parametrize("user", [BOB, JOERG], ids=["space-password", "non-ascii"])
def test_imap_special_credentials(running, dovecot, user):
    with open_imap(*running.address("imap")) as imap:
        imap_login(imap, user)
        imap.select("INBOX", readonly=True)
        assert imap_fetch(imap, "1") == dovecot.delivered(user.login)[0].data


def test_imaps_bulk_fetch_of_10_mb(running, dovecot, tls_client_context):
    with open_imap(*running.address("imaps"), security="ssl", context=tls_client_context) as imap:
        imap_login(imap, BULK)
        imap.select("INBOX", readonly=True)
        assert imap_fetch(imap, "1") == dovecot.delivered(BULK.login)[0].data


# -- POP3 -------------------------------------------------------------------------------


def test_pop3_user_pass_retr(running, dovecot, tls_client_context):
    for security, port in (("plain", "pop3"), ("starttls", "pop3"), ("ssl", "pop3s")):
        client = open_pop3(*running.address(port), security=security, context=tls_client_context)
        try:
            client.user(ALICE.login)
            client.pass_(ALICE.password)
            assert pop3_retr(client, 2) == dovecot.delivered(ALICE.login)[1].data
        finally:
            client.quit()


# -- SMTP -------------------------------------------------------------------------------


def test_smtp_xclient_on_delivers_byte_for_byte(running, smtp_backend):
    with open_smtp(*running.address("smtp")) as client:
        client.ehlo("client.test")
        client.login(ALICE.login, ALICE.password)
        client.sendmail("a@example.test", ["b@example.test"], SMTP_BODY)
    [message] = smtp_backend.wait_for_messages(1)
    assert message.data == SMTP_BODY
    assert (message.mail_from, message.rcpt_tos) == ("a@example.test", ["b@example.test"])
    [connection] = smtp_backend.connections()
    assert connection.command_lines()[:3] == [
        "EHLO mx.test",
        "XCLIENT ADDR=127.0.0.1 LOGIN=alice NAME=[UNAVAILABLE]",
        "EHLO client.test",
    ]
    assert connection.verbs()[3:] == ["MAIL", "RCPT", "DATA", "QUIT"]


def test_smtp_xclient_off_over_implicit_tls(running, smtp_backend, tls_client_context):
    with open_smtp(*running.address("smtps"), security="ssl", context=tls_client_context) as client:
        client.ehlo("client.test")
        client.login(BOB.login, BOB.password)
        client.sendmail("a@example.test", ["b@example.test"], SMTP_BODY)
    [message] = smtp_backend.wait_for_messages(1)
    assert message.data == SMTP_BODY and message.xclient is None
    # No XCLIENT: nginx's own EHLO, then the client's session relayed as it is.
    assert smtp_backend.connections()[0].command_lines()[:2] == [
        "EHLO mx.test",
        "MAIL FROM:<a@example.test>",
    ]


def test_smtp_auth_none_passes_the_envelope(running, smtp_backend, auth_server):
    with open_smtp(*running.address("smtp_none")) as client:
        client.ehlo("client.test")
        client.sendmail("a@example.test", ["b@example.test"], SMTP_BODY)
    [message] = smtp_backend.wait_for_messages(1)
    assert message.data == SMTP_BODY and message.login is None
    assert smtp_backend.connections()[0].command_lines()[:5] == [
        "EHLO mx.test",
        "XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]",
        "EHLO client.test",
        "MAIL FROM:<a@example.test>",
        "RCPT TO:<b@example.test>",
    ]
    [request] = auth_server.requests
    assert request.auth_method == "none"
    assert request.header("Auth-SMTP-From") == "mail FROM:<a@example.test>"  # smtplib's, verbatim


def test_smtp_rejected_recipient_reaches_the_client(running, smtp_backend):
    smtp_backend.reject_rcpt["nobody@example.test"] = "550 5.1.1 No such user"
    with open_smtp(*running.address("smtp")) as client:
        client.ehlo("client.test")
        client.login(ALICE.login, ALICE.password)
        refused = client.sendmail(
            "a@example.test", ["nobody@example.test", "b@example.test"], SMTP_BODY
        )
    assert refused == {"nobody@example.test": (550, b"5.1.1 No such user")}


# -- auth_http requests -------------------------------------------------------------------


def test_auth_http_requests_in_nginx_order(running, auth_server, tls_client_context):
    with open_imap(*running.address("imap")) as imap:
        imap_login(imap, BOB)
    client = open_pop3(*running.address("pop3s"), security="ssl", context=tls_client_context)
    client.user(JOERG.login)
    client.pass_(JOERG.password)
    client.quit()
    with open_smtp(*running.address("smtp")) as smtp:
        smtp.ehlo("client.test")
        smtp.login(ALICE.login, ALICE.password)
    imap_request, pop3_request, smtp_request = auth_server.wait_for_requests(3)
    head = b"GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: plain\r\n"
    assert imap_request.raw == head + (
        b"Auth-User: bob\r\nAuth-Pass: secret%20pass\r\nAuth-Protocol: imap\r\n"
        b"Auth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\nX-Custom: hello world\r\n\r\n"
    )
    assert pop3_request.generated_headers() == [
        *imap_request.generated_headers(),
        "Auth-SSL",
        "Auth-SSL-Protocol",
        "Auth-SSL-Cipher",
    ]
    assert pop3_request.header_names[-1] == "X-Custom"
    assert pop3_request.header("Auth-User") == "jörg" and pop3_request.login == JOERG.login
    assert pop3_request.header("Auth-SSL-Protocol") == "TLSv1.3"
    assert smtp_request.raw == head + (
        b"Auth-User: alice\r\nAuth-Pass: alice-secret\r\nAuth-Protocol: smtp\r\n"
        b"Auth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\nClient-Host: [UNAVAILABLE]\r\n"
        b"X-Custom: hello world\r\n\r\n"
    )


def test_apop_sends_the_salt(running, auth_server, dovecot):
    client = open_pop3(*running.address("pop3"))
    try:
        client.apop(ALICE.login, ALICE.password)
        assert pop3_retr(client, 1) == dovecot.delivered(ALICE.login)[0].data
    finally:
        client.quit()
    [request] = auth_server.requests
    assert request.auth_method == "apop"
    assert request.salt == client.timestamp.search(client.welcome).group(1).decode()
    assert request.header_names.index("Auth-Salt") == request.header_names.index("Auth-Pass") + 1


# -- TLS with curl and openssl --------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme, port, path, ssl_reqd",
    [
        ("imaps", "imaps", "INBOX;UID=1", False),
        ("imap", "imap", "INBOX;UID=1", True),
        ("pop3s", "pop3s", "1", False),
        ("pop3", "pop3", "1", True),
    ],
)
def test_curl_fetch_over_tls(running, dovecot, pki, scheme, port, path, ssl_reqd):
    url = curl_url(scheme, *running.address(port), path)
    result = curl(url, pki=pki, user=ALICE, ssl_reqd=ssl_reqd).check()
    assert result.stdout == dovecot.delivered(ALICE.login)[0].data


@pytest.mark.parametrize("scheme, port", [("smtps", "smtps"), ("smtp", "smtp")])
def test_curl_send_over_tls(running, smtp_backend, pki, scheme, port):
    message = make_message("via curl", "sent with curl\r\n")
    curl(
        curl_url(scheme, *running.address(port)),
        pki=pki,
        user=ALICE,
        ssl_reqd=scheme == "smtp",
        mail_from="a@example.test",
        mail_rcpt=["b@example.test"],
        upload=message,
    ).check()
    assert smtp_backend.wait_for_messages(1)[0].data == message


@pytest.mark.parametrize(
    "protocol, port, command",
    [
        ("imap", "imap", b"a1 LOGIN alice alice-secret\r\na2 LOGOUT\r\n"),
        ("pop3", "pop3", b"USER alice\r\nPASS alice-secret\r\nQUIT\r\n"),
        ("smtp", "smtp", b"QUIT\r\n"),
    ],
)
def test_openssl_starttls(running, pki, protocol, port, command):
    result = s_client(*running.address(port), pki=pki, starttls=protocol, send=command)
    assert result.verify_code == 0, result.stdout
    assert result.handshakes[0][:2] == ("New", "TLSv1.3")
    expected = {"imap": b"a2 OK", "pop3": b"+OK Logging out", "smtp": b"221 "}[protocol]
    assert expected in result.stdout


def test_openssl_implicit_tls_session_resumption(running, pki, tmp_path):
    session = tmp_path / "session.pem"
    first = s_client(*running.address("imaps"), pki=pki, sess_out=session, send=b"a LOGOUT\r\n")
    assert first.handshakes[0][0] == "New" and session.stat().st_size > 0
    second = s_client(*running.address("imaps"), pki=pki, sess_in=session, send=b"a LOGOUT\r\n")
    assert second.handshakes[0][0] == "Reused"
    again = s_client(*running.address("imaps"), pki=pki, reconnect=True, tls_version="tls1_2")
    assert again.reused_count >= 1, again.stdout


@pytest.mark.parametrize(
    "cipher, key_type",
    [
        ("ECDHE-RSA-AES128-GCM-SHA256", b"RSA"),
        ("ECDHE-ECDSA-AES128-GCM-SHA256", b"EC"),
    ],
)
def test_rsa_and_ecdsa_chains_are_both_served(running, pki, cipher, key_type):
    result = s_client(
        *running.address("imaps"),
        pki=pki,
        tls_version="tls1_2",
        extra=["-cipher", cipher],
        send=b"a LOGOUT\r\n",
    )
    assert result.verify_code == 0 and result.handshakes[0][2] == cipher
    assert b"Server public key is" in result.stdout
    assert (
        b"depth=1 C = US, O = mailgate tests, CN = mailgate test intermediate CA"
        in result.stderr.encode()
    )
    assert (b"a:PKEY: " + key_type) in result.stdout or key_type in result.stdout


# -- failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "port, script, expected",
    [
        ("imap", [b"a1 LOGIN alice wrong\r\n"], b"a1 NO Invalid login or password\r\n"),
        (
            "pop3",
            [b"USER alice\r\n", ReadLine(), b"PASS wrong\r\n"],
            b"-ERR Invalid login or password\r\n",
        ),
        (
            "smtp",
            [b"EHLO client.test\r\n", ReadTagged(b"250"), b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n"],
            b"535 5.7.8 Invalid login or password\r\n",
        ),
    ],
)
def test_bad_password_gets_nginx_reply_and_close(running, auth_server, port, script, expected):
    transcript = run_script(running.address(port), [ReadLine(), *script, ReadEOF()])
    assert transcript.replies()[-1] == expected
    assert transcript.closed_by_server
    assert auth_server.requests[0].password == "wrong"
    assert any(
        'client login failed: "Invalid login or password"' in line
        for line in running.log_lines("info")
    )


def test_starttls_transcript_and_salt_masking(running, tls_client_context):
    transcript = run_script(
        running.address("pop3"),
        [
            ReadLine(),
            b"CAPA\r\n",
            ReadUntil(b"\r\n.\r\n"),
            b"STLS\r\n",
            ReadLine(),
            StartTLS(),
            b"QUIT\r\n",
            ReadEOF(),
        ],
        tls_context=tls_client_context,
    )
    greeting = transcript.replies()[0]
    assert greeting.startswith(b"+OK POP3 ready <") and greeting.endswith(b"@mx.test>\r\n")
    masked = transcript.normalized(*MASK_SALTS)
    assert masked.replies()[0] == b"+OK POP3 ready <SALT>\r\n"
    assert [e.kind for e in masked.events][-4:] == ["tls", "C", "S", "eof"]
    assert masked.replies()[-1] == b"+OK\r\n"


CLIENT_CERT_MAIL = """
    server_name mx.test;
    auth_http $auth_http;
    ssl_certificate $rsa_cert;
    ssl_certificate_key $rsa_key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_verify_client optional;
    ssl_client_certificate $ca;
    ssl_crl $crl;
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
"""


@pytest.mark.parametrize(
    "name, verified",
    [
        ("client", True),
        ("client_via_intermediate", True),
        ("client_self_signed", False),
        ("client_revoked", False),
        ("client_via_intermediate_revoked", False),
        ("client_expired", False),
    ],
)
def test_client_certificates_and_crls(proxy, pki, auth_server, name, verified):
    proxy.start(CLIENT_CERT_MAIL)
    cert = getattr(pki, name)
    context = client_context(pki, client_cert=cert)
    transcript = run_script(
        proxy.address("imaps"),
        [
            ReadLine(),
            b"a1 LOGIN alice alice-secret\r\n",
            ReadTagged(b"a1"),
            b"a2 LOGOUT\r\n",
            ReadEOF(),
        ],
        tls_context=context,
        implicit_tls=True,
    )
    if not verified:
        assert transcript.replies() == [b"* BYE SSL certificate error\r\n"]
        assert auth_server.requests == []
        return
    assert b"a1 OK" in transcript.received
    [request] = auth_server.requests
    assert request.header("Auth-SSL-Verify") == "SUCCESS"
    assert request.header("Auth-SSL-Serial") == cert.serial_hex
    assert request.header("Auth-SSL-Fingerprint") == cert.sha1_fingerprint
    assert "CN=client" in request.header("Auth-SSL-Subject")
