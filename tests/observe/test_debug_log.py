"""``error_log FILE debug``: nginx's debug lines for every step of a session, and no
secret in any line at any level (passwords, SASL responses, their base64 forms)."""

from __future__ import annotations

import base64
import poplib
import re

import pytest

from tests.support.clients import imap_login, open_imap, open_pop3, open_smtp
from tests.support.configs import STANDARD
from tests.support.users import ALICE, BOB

SHARED_KEY = "shared-key-4711"  # an auth_http_header value: a secret shared with the auth server
DEBUG = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[debug\] \d+#\d+: \*(\d+) (.*)$")


def secrets_of(user) -> list[bytes]:
    """Every form in which a password travels: as is, URL-escaped (Auth-Pass), in base64
    alone (AUTH LOGIN) and in a PLAIN response, with and without an authzid."""
    password = user.password_bytes
    forms = [password, password.replace(b" ", b"%20"), base64.b64encode(password),
             base64.b64encode(b"\0" + user.login_bytes + b"\0" + password),
             base64.b64encode(user.login_bytes + b"\0" + user.login_bytes + b"\0" + password)]
    return forms


def assert_no_secret(text: bytes, *users) -> None:
    for user in users:
        for secret in secrets_of(user):
            assert secret not in text, (user.login, secret)


def test_debug_lines_of_sessions_and_no_secret(embedded, dovecot, smtp_backend,
                                               tls_client_context):
    log_path = embedded.directory / "debug.log"
    access_path = embedded.directory / "access.log"
    gate = embedded.start("error_log %s debug;\naccess_log %s;\nauth_http_header X-Auth-Key %s;\n%s"
                          % (log_path, access_path, SHARED_KEY, STANDARD))
    # IMAP over implicit TLS with LOGIN, IMAP with AUTHENTICATE PLAIN after STARTTLS
    with open_imap(*gate.address("imaps"), security="ssl", context=tls_client_context) as imap:
        imap_login(imap, ALICE)
        imap.select("INBOX", readonly=True)
    with open_imap(*gate.address("imap"), security="starttls", context=tls_client_context) as imap:
        imap.authenticate("PLAIN", lambda _: b"\0" + BOB.login_bytes + b"\0" + BOB.password_bytes)
    # POP3 USER/PASS in plain text; a wrong password
    pop = open_pop3(*gate.address("pop3"))
    pop.user(ALICE.login)
    pop.pass_(ALICE.password)
    pop.quit()
    pop = open_pop3(*gate.address("pop3"))
    pop.user(BOB.login)
    with pytest.raises(poplib.error_proto):
        pop.pass_(BOB.password + "x")  # refused
    pop.close()
    # SMTP AUTH (CRAM-MD5, smtplib's first choice) and PLAIN
    smtp = open_smtp(*gate.address("smtp"))
    smtp.ehlo("client.test")
    smtp.login(ALICE.login, ALICE.password)
    smtp.quit()
    smtp = open_smtp(*gate.address("smtps"), security="ssl", context=tls_client_context)
    smtp.ehlo("client.test")
    smtp.auth("PLAIN", lambda challenge=None: "\0%s\0%s" % (BOB.login, BOB.password),
              initial_response_ok=True)
    smtp.quit()
    smtp = open_smtp(*gate.address("smtp"))
    smtp.ehlo("client.test")
    smtp.user, smtp.password = ALICE.login, ALICE.password
    smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)
    smtp.quit()
    embedded.stop()

    text = log_path.read_bytes()
    for path in (log_path, access_path):  # every log the proxy wrote, all levels
        assert_no_secret(path.read_bytes(), ALICE, BOB)
        assert SHARED_KEY.encode() not in path.read_bytes()
    lines = [DEBUG.match(line) for line in text.decode().splitlines()]
    debug = [(int(m.group(1)), m.group(2)) for m in lines if m]
    messages = [message for _, message in debug]

    def has(pattern: str) -> bool:
        return any(re.search(pattern, message) for message in messages)

    # accept, TLS steps, commands, state changes, auth_http both ways, backend, relay, close
    for pattern in (
        r"^accept: 127\.0\.0\.1:\d+ fd:\d+$",
        r"^SSL_do_handshake: -1$", r"^SSL_do_handshake: 1$",
        r'^SSL: TLSv1\.[23], cipher: "[A-Z0-9_-]+"$',
        r"^mail state: handshake$", r"^mail state: pre-auth$",
        r'^imap auth command: "\S+ LOGIN \.\.\."$',
        r'^imap auth command: "\S+ AUTHENTICATE \.\.\."$', r'^imap auth command: "\.\.\."$',
        r'^pop3 auth command: "USER alice"$', r'^pop3 auth command: "\.\.\."$',
        r'^smtp auth command: "AUTH \.\.\."$', r"^mail auth state: CRAM-MD5 ",
        r"^mail auth state: LOGIN ", r'^mail auth http request header: "X-Auth-Key: \.\.\."$',
        r'^mail auth: plain login:"alice" attempt:1$',
        r'^mail auth http request: "GET /\S* HTTP/1\.0"$',
        r'^mail auth http request header: "Auth-Pass: \.\.\."$',
        r'^mail auth http request header: "Auth-User: alice"$',
        r'^mail auth http header: "Auth-Status: OK"$',
        r'^mail auth http header: "Auth-Status: .*[Ii]nvalid', r"^mail auth http header done$",
        r"^mail auth result: ok$", r"^mail auth result: failed$",
        r"^mail proxy connect to upstream: 127\.0\.0\.1:\d+$",
        r'^mail proxy imap auth handler: "\* OK', r"^mail proxy send login$",
        r'^mail proxy pop3 auth handler: "\+OK', r"^mail proxy send user$",
        r"^mail proxy send passwd$", r'^mail proxy smtp auth handler: "220 ',
        r"^mail proxy relay start$", r"^close mail connection: proxied",
        r"^close mail connection: auth_failed",
    ):
        assert has(pattern), pattern
    # debug lines carry the session number and no context, as nginx's
    assert not any(" while " in message or ", client: " in message for message in messages)
    assert len({number for number, _ in debug}) >= 6


def test_no_debug_line_below_debug(embedded, dovecot):
    gate = embedded.start(STANDARD)
    with open_imap(*gate.address("imap")) as imap:
        imap_login(imap, ALICE)
    embedded.stop()
    assert "[debug]" not in embedded.error_log()
    assert_no_secret(embedded.error_log_path.read_bytes(), ALICE)
