"""Real clients end to end through the proxy, with Dovecot and the SMTP backend behind:
imaplib, poplib, smtplib, curl and ``openssl s_client``, over plain TCP, STARTTLS and
implicit TLS.  Every message arrives as it is stored, byte for byte."""

from __future__ import annotations

import base64

import pytest

from tests.support.clients import (
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
from tests.support.configs import PORTS, SECURITIES, STANDARD
from tests.support.messages import DOT_MESSAGE, EIGHT_BIT_MESSAGE, make_message
from tests.support.users import ALICE, BOB, JOERG


@pytest.fixture
def running(gate):
    return gate.start(STANDARD)


@pytest.mark.parametrize("security", SECURITIES)
def test_imaplib(running, dovecot, tls_client_context, security):
    address = running.address(PORTS["imap", security])
    for user in (ALICE, BOB, JOERG):
        with open_imap(*address, security=security, context=tls_client_context) as imap:
            assert imap_login(imap, user).endswith(b"Logged in")
            assert imap.select("INBOX", readonly=True)[0] == "OK"
            for number, stored in enumerate(dovecot.delivered(user.login), 1):
                assert imap_fetch(imap, str(number)) == stored.data
            assert imap.logout()[0] == "BYE"


@pytest.mark.parametrize("security", SECURITIES)
def test_poplib(running, dovecot, tls_client_context, security):
    address = running.address(PORTS["pop3", security])
    for user in (ALICE, BOB):
        client = open_pop3(*address, security=security, context=tls_client_context)
        try:
            client.user(user.login)
            assert client.pass_(user.password).startswith(b"+OK")
            stored = dovecot.delivered(user.login)
            assert client.stat()[0] == len(stored)
            for number, message in enumerate(stored, 1):
                assert pop3_retr(client, number) == message.data
        finally:
            assert client.quit().startswith(b"+OK")


def test_poplib_apop(running, dovecot):
    client = open_pop3(*running.address("pop3"))
    try:
        assert client.apop(ALICE.login, ALICE.password).startswith(b"+OK")
        assert pop3_retr(client, 2) == DOT_MESSAGE
    finally:
        client.quit()


@pytest.mark.parametrize("security", SECURITIES)
def test_smtplib(running, smtp_backend, tls_client_context, security):
    with open_smtp(*running.address(PORTS["smtp", security]), security=security,
                   context=tls_client_context) as client:
        client.ehlo("client.test")
        assert client.login(ALICE.login, ALICE.password) == (235, b"2.0.0 OK")
        for message in (DOT_MESSAGE, EIGHT_BIT_MESSAGE):
            assert client.sendmail("alice@example.test", ["bob@example.test"], message) == {}
    received = smtp_backend.wait_for_messages(2)
    assert [m.data for m in received] == [DOT_MESSAGE, EIGHT_BIT_MESSAGE]
    assert received[0].mail_from == "alice@example.test"
    assert received[0].rcpt_tos == ["bob@example.test"]


CURL_FETCH = [
    ("imap", "imap", "INBOX;UID=2", False),
    ("imaps", "imaps", "INBOX;UID=2", False),
    ("imap", "imap", "INBOX;UID=2", True),
    ("pop3", "pop3", "2", False),
    ("pop3s", "pop3s", "2", False),
    ("pop3", "pop3", "2", True),
]


@pytest.mark.parametrize("scheme, port, path, ssl_reqd", CURL_FETCH)
def test_curl_fetch(running, dovecot, pki, scheme, port, path, ssl_reqd):
    url = curl_url(scheme, *running.address(port), path)
    result = curl(url, pki=pki, user=ALICE, ssl_reqd=ssl_reqd).check()
    # curl undoes POP3's dot-stuffing, as it must: the stored bytes come out
    assert result.stdout == DOT_MESSAGE == dovecot.delivered(ALICE.login)[1].data


@pytest.mark.parametrize(
    "scheme, port, ssl_reqd",
    [("smtp", "smtp", False), ("smtps", "smtps", False), ("smtp", "smtp", True)])
def test_curl_send(running, smtp_backend, pki, scheme, port, ssl_reqd):
    message = make_message("via curl", ".dot first\r\nlast line\r\n")
    curl(curl_url(scheme, *running.address(port)), pki=pki, user=BOB, ssl_reqd=ssl_reqd,
         mail_from="bob@example.test", mail_rcpt=["alice@example.test"], upload=message).check()
    [received] = smtp_backend.wait_for_messages(1)
    assert received.data == message and received.xclient["LOGIN"] == BOB.login


def _plain(user) -> bytes:
    return base64.b64encode(b"\0" + user.login_bytes + b"\0" + user.password_bytes)


S_CLIENT_SCRIPTS = {
    # commands pipelined after the login reach the backend once the login is done
    "imap": b"a1 LOGIN alice alice-secret\r\na2 EXAMINE INBOX\r\na3 FETCH 2 BODY.PEEK[]\r\n"
            b"a4 LOGOUT\r\n",
    "pop3": b"USER alice\r\nPASS alice-secret\r\nRETR 3\r\nQUIT\r\n",
    "smtp": b"EHLO client.test\r\nAUTH PLAIN " + _plain(ALICE) + b"\r\n"
            b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n",
}


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_openssl_s_client(
        running, dovecot, smtp_backend, pki, protocol, security):
    send = S_CLIENT_SCRIPTS[protocol]
    if protocol == "smtp":
        send += DOT_MESSAGE.replace(b"\r\n.", b"\r\n..") + b".\r\nQUIT\r\n"
    result = s_client(*running.address(PORTS[protocol, security]), pki=pki,
                      starttls=protocol if security == "starttls" else None, send=send)
    assert result.verify_code == 0, result.stdout
    assert result.handshakes[0][:2] == ("New", "TLSv1.3")
    if protocol == "imap":
        assert b"a2 OK" in result.stdout and b"a4 OK" in result.stdout
        assert b"{%d}\r\n" % len(DOT_MESSAGE) + DOT_MESSAGE + b")\r\na3 OK" in result.stdout
    elif protocol == "pop3":
        stuffed = EIGHT_BIT_MESSAGE.replace(b"\r\n.", b"\r\n..")
        assert b"+OK %d octets\r\n" % len(EIGHT_BIT_MESSAGE) + stuffed + b".\r\n" in result.stdout
    else:
        assert b"235 2.0.0 OK\r\n" in result.stdout and b"221 " in result.stdout
        assert smtp_backend.wait_for_messages(1)[0].data == DOT_MESSAGE
