"""Conformance of the pre-auth dialogues: the same client scripts through Debian's
nginx and mailgate on one configuration, compared byte for byte (salts masked), and
the session lines of both error logs compared.  Greetings, capabilities with starttls
off/on/only, SASL exchanges, errors, max_errors, too long lines, STARTTLS."""

from __future__ import annotations

import pytest

from tests.e2e.conformance import Script, compare
from tests.e2e.gates import wait_for_log
from tests.e2e.scripts import EHLO_DONE, proxy_v2
from tests.support.configs import TLS
from tests.support.transcript import ReadEOF, ReadLine, ReadTagged, ReadUntil, StartTLS, run_script

MAIL = """
    server_name mx.test;
    auth_http $auth_http;
""" + TLS + """
    server { listen 127.0.0.1:${port_imap}; protocol imap; }
    server { listen 127.0.0.1:${port_imap_on}; protocol imap; starttls on;
             imap_auth plain login cram-md5 external; }
    server { listen 127.0.0.1:${port_imap_only}; protocol imap; starttls only;
             imap_auth login cram-md5; imap_capabilities IMAP4rev1 SASL-IR IDLE; }
    server { listen 127.0.0.1:${port_imap_small}; protocol imap; imap_client_buffer 64;
             max_errors 3; }
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; starttls on; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; }
    server { listen 127.0.0.1:${port_pop3_on}; protocol pop3; starttls on;
             pop3_auth plain apop cram-md5 external; }
    server { listen 127.0.0.1:${port_pop3_only}; protocol pop3; starttls only;
             pop3_capabilities TOP USER UIDL RESP-CODES; max_errors 2; }
    server { listen 127.0.0.1:${port_pop3_apop}; protocol pop3; pop3_auth apop; }
    server { listen 127.0.0.1:${port_pop3s} ssl; protocol pop3; starttls on; }
    server { listen 127.0.0.1:${port_smtp}; protocol smtp; }
    server { listen 127.0.0.1:${port_smtp_on}; protocol smtp; starttls on;
             smtp_auth none cram-md5 login plain;
             smtp_capabilities PIPELINING "SIZE 10485760" 8BITMIME; }
    server { listen 127.0.0.1:${port_smtp_only}; protocol smtp; starttls only;
             smtp_capabilities PIPELINING; }
    server { listen 127.0.0.1:${port_smtp_none}; protocol smtp; smtp_auth none;
             smtp_capabilities "SIZE 1000"; }
    server { listen 127.0.0.1:${port_smtp_small}; protocol smtp; smtp_client_buffer 64;
             max_errors 3; }
    server { listen 127.0.0.1:${port_smtps} ssl; protocol smtp; starttls on; }
    server { listen 127.0.0.1:${port_pp} proxy_protocol; protocol pop3; }
"""

T = ReadTagged
LOGOUT = [b"z LOGOUT\r\n", ReadEOF()]

IMAP = [
    Script("greeting-capability-noop", "imap", [
        ReadLine(), b"a1 CAPABILITY\r\n", T(b"a1"), b"a2 noop with args\r\n", T(b"a2"), *LOGOUT]),
    Script("tags", "imap", [
        ReadLine(), b"%s NOOP\r\n" % (b"t" * 32), T(b"t" * 32), b"%s NOOP\r\n" % (b"t" * 33),
        ReadLine(), b" NOOP\r\n", ReadLine(), b"a.b-c_d NOOP\r\n", T(b"a.b-c_d"),
        b"a+b NOOP\r\n", ReadLine(), *LOGOUT]),
    Script("line-ends", "imap", [
        ReadLine(), b"a1 NOOP\n", T(b"a1"), b"a2 NOOP\r\r\n", ReadLine(), b"\r\n", ReadLine(),
        b"a3 Noop\r\n", T(b"a3"), *LOGOUT]),
    Script("unknown-commands-hit-max-errors", "imap", [
        ReadLine(), b"a1 SELECT INBOX\r\n", T(b"a1"), b"a2 ENABLE X\r\n", T(b"a2"),
        b"a3 LOGIN\r\n", T(b"a3"), b"a4 STARTTLS\r\n", T(b"a4"), b"a5 FOO\r\n", T(b"a5"),
        b"a6 BAR\r\n", T(b"a6"), b"a7 BAZ\r\n", ReadEOF()]),
    Script("login-arguments", "imap", [
        ReadLine(), b"a1 LOGIN alice\r\n", T(b"a1"), b"a2 LOGIN a b c d\r\n", T(b"a2"),
        b'a3 LOGIN "" x\r\n', T(b"a3"), b'a4 LOGIN "ali\\ce" "pass word"\r\n', ReadEOF()]),
    Script("login-literals", "imap", [
        ReadLine(), b"a1 LOGIN {5}\r\n", ReadLine(), b"alice {12}\r\n", ReadLine(),
        b"alice-secret\r\n", T(b"a1"), *LOGOUT]),
    Script("login-nonsync-literals", "imap", [
        ReadLine(), b"a1 LOGIN {5+}\r\nalice {12+}\r\nalice-secret\r\n", T(b"a1"), *LOGOUT]),
    Script("literal-zero-takes-one-byte", "imap", [
        ReadLine(), b"a1 LOGIN alice {0}\r\n", ReadLine(), b"\r\n", ReadEOF()]),
    Script("rejected-line-with-nonsync-literal-closes", "imap", [
        ReadLine(), b"a1 FOO {5+}\r\n", ReadEOF()]),
    Script("authenticate-plain", "imap", [
        ReadLine(), b"a1 AUTHENTICATE PLAIN\r\n", ReadLine(),
        b"AGFsaWNlAGFsaWNlLXNlY3JldA==\r\n", T(b"a1"), *LOGOUT]),
    Script("authenticate-plain-ir-and-errors", "imap", [
        ReadLine(), b"a1 AUTHENTICATE PLAIN *\r\n", T(b"a1"),
        b"a2 AUTHENTICATE PLAIN AGFsaWNl\r\n", T(b"a2"),
        b"a3 AUTHENTICATE PLAIN YQ==\r\n", T(b"a3"),
        b"a4 AUTHENTICATE GSSAPI\r\n", T(b"a4"), b"a5 AUTHENTICATE\r\n", T(b"a5"),
        b"a6 AUTHENTICATE CRAM-MD5\r\n", T(b"a6"), b"a7 AUTHENTICATE PLAIN AGFsaWNlAHdyb25n\r\n",
        ReadEOF()]),
    Script("authenticate-login", "imap", [
        ReadLine(), b"a1 AUTHENTICATE LOGIN\r\n", ReadLine(), b"YWxpY2U=\r\n", ReadLine(),
        b"YWxpY2Utc2VjcmV0\r\n", T(b"a1"), *LOGOUT]),
    Script("authenticate-login-bad-username-untagged", "imap", [
        ReadLine(), b"a1 AUTHENTICATE LOGIN\r\n", ReadLine(), b"*\r\n", ReadLine(),
        b"a2 AUTHENTICATE LOGIN YWxpY2U=\r\n", ReadLine(), b"!!\r\n", T(b"a2"), *LOGOUT]),
    Script("starttls-on-capabilities", "imap_on", [
        ReadLine(), b"a1 CAPABILITY\r\n", T(b"a1"), b"a2 STARTTLS\r\na3 NOOP\r\n", T(b"a2"),
        StartTLS(), b"a4 CAPABILITY\r\n", T(b"a4"), b"a5 STARTTLS\r\n", T(b"a5"), *LOGOUT]),
    Script("cram-md5", "imap_on", [
        ReadLine(), b"a1 AUTHENTICATE CRAM-MD5\r\n", ReadLine(),
        b"YWxpY2UgMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\r\n", ReadEOF()]),
    Script("cram-md5-bad-hash-then-external", "imap_on", [
        ReadLine(), b"a1 AUTHENTICATE CRAM-MD5 x\r\n", T(b"a1"), b"a2 AUTHENTICATE CRAM-MD5\r\n",
        ReadLine(), b"YWxpY2UgMDEy\r\n", T(b"a2"), b"a3 AUTHENTICATE EXTERNAL\r\n",
        ReadLine(), b"=\r\n", ReadEOF()]),
    Script("starttls-only", "imap_only", [
        ReadLine(), b"a1 CAPABILITY\r\n", T(b"a1"), b"a2 LOGIN alice alice-secret\r\n", T(b"a2"),
        b"a3 AUTHENTICATE LOGIN\r\n", T(b"a3"), b"a4 STARTTLS\r\n", T(b"a4"), StartTLS(),
        b"a5 CAPABILITY\r\n", T(b"a5"), b"a6 LOGIN alice alice-secret\r\n", T(b"a6"), *LOGOUT]),
    Script("implicit-tls", "imaps", [
        ReadLine(), b"a1 CAPABILITY\r\n", T(b"a1"), b"a2 STARTTLS\r\n", T(b"a2"), *LOGOUT],
        implicit_tls=True),
    Script("buffer-64-fits", "imap_small", [
        ReadLine(), b"a1 NOOP " + b"x" * 54 + b"\r\n", T(b"a1"), *LOGOUT]),
    Script("buffer-65-too-long", "imap_small", [
        ReadLine(), b"a1 NOOP " + b"x" * 55 + b"\r\n", ReadEOF()]),
    Script("pipelined-burst-too-long", "imap_small", [
        # every line is short, but the buffer is not compacted: the 7th ends past 64 bytes
        # (64 are sent: with more, the close would reset the connection and lose replies)
        ReadLine(), b"a1 NOOP\r\na2 NOOP\r\na3 NOOP\r\na4 NOOP\r\na5 NOOP\r\na6 NOOP\r\na7 NOOP xx",
        ReadEOF()]),
    Script("authenticate-exchange-too-long", "imap_small", [
        ReadLine(), b"a1 AUTHENTICATE LOGIN\r\n", ReadLine(), b"YWxpY2VhbGljZWFsaWNlYWxp\r\n",
        ReadLine(), b"YWxpY2VhbGljZWFsaWNlYWxp\r\n", ReadEOF()]),
    Script("max-errors-3", "imap_small", [
        ReadLine(), b"a1 FOO\r\n", T(b"a1"), b"a2 LOGIN\r\n", T(b"a2"), b"a3 BAR\r\n", T(b"a3"),
        b"a4 BAZ\r\n", ReadEOF()]),
    Script("eof-before-login", "imap", [ReadLine(), b"a1 NOOP\r\n", T(b"a1")]),
]


DOT = ReadUntil(b"\r\n.\r\n")
QUIT = [b"QUIT\r\n", ReadEOF()]

POP3 = [
    Script("greeting-capa-auth-noop", "pop3", [
        ReadLine(), b"CAPA\r\n", DOT, b"AUTH\r\n", DOT, b"NOOP\r\n", ReadLine(), b"noop\n",
        ReadLine(), *QUIT]),
    Script("user-pass-keep-spaces", "pop3", [
        ReadLine(), b"USER  alice \r\n", ReadLine(), b"PASS  alice-secret \r\n", ReadEOF()]),
    Script("user-state", "pop3", [
        ReadLine(), b"PASS x\r\n", ReadLine(), b"USER alice\r\n", ReadLine(), b"CAPA\r\n", DOT,
        b"NOOP\r\n", ReadLine(), b"USER bob\r\n", ReadLine(), b"PASS x\r\n", ReadLine(), *QUIT]),
    Script("arguments", "pop3", [
        ReadLine(), b"USER\r\n", ReadLine(), b"APOP alice\r\n", ReadLine(),
        b"AUTH PLAIN a b c d\r\n", ReadLine(), b"STLS\r\n", ReadLine(), *QUIT]),
    Script("transaction-commands-hit-max-errors", "pop3", [
        ReadLine(), b"STAT\r\n", ReadLine(), b"LIST\r\n", ReadLine(), b"RETR 1\r\n",
        ReadLine(), b"USERX\r\n", ReadLine(), b"DELE 1\r\n", ReadEOF()]),
    Script("line-ends", "pop3", [
        ReadLine(), b"NOOP\r\r\n", ReadLine(), b"\r\n", ReadLine(), *QUIT]),
    Script("buffer-128-fits", "pop3", [
        ReadLine(), b"NOOP " + b"x" * 121 + b"\r\n", ReadLine(), *QUIT]),
    Script("buffer-129-too-long", "pop3", [
        ReadLine(), b"NOOP " + b"x" * 122 + b"\r\n", ReadEOF()]),
    Script("user-pass-logs-in", "pop3", [
        ReadLine(), b"USER alice\r\n", ReadLine(), b"PASS alice-secret\r\n", ReadLine(), *QUIT]),
    Script("auth-plain", "pop3", [
        ReadLine(), b"AUTH PLAIN\r\n", ReadLine(), b"AGFsaWNlAGFsaWNlLXNlY3JldA==\r\n",
        ReadLine(), *QUIT]),
    Script("auth-plain-errors", "pop3", [
        ReadLine(), b"AUTH PLAIN *\r\n", ReadLine(), b"AUTH PLAIN AGFsaWNl\r\n", ReadLine(),
        b"AUTH CRAM-MD5\r\n", ReadLine(), b"AUTH GSSAPI\r\n", ReadLine(),
        b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n", ReadEOF()]),
    Script("auth-login", "pop3", [
        ReadLine(), b"AUTH LOGIN\r\n", ReadLine(), b"YWxpY2U=\r\n", ReadLine(),
        b"YWxpY2Utc2VjcmV0\r\n", ReadLine(), *QUIT]),
    Script("auth-login-initial-user-bad-password-encoding", "pop3", [
        ReadLine(), b"AUTH LOGIN YWxpY2U=\r\n", ReadLine(), b"!!\r\n", ReadLine(), *QUIT]),
    Script("starttls-on", "pop3_on", [
        ReadLine(), b"CAPA\r\n", DOT, b"AUTH\r\n", DOT, b"STLS\r\nNOOP\r\n", ReadLine(),
        StartTLS(), b"CAPA\r\n", DOT, b"STLS\r\n", ReadLine(), *QUIT]),
    Script("apop-and-cram-md5-salts", "pop3_on", [
        ReadLine(), b"AUTH CRAM-MD5\r\n", ReadLine(),
        b"YWxpY2UgMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\r\n", ReadEOF()]),
    Script("apop", "pop3_on", [
        ReadLine(), b"APOP alice 0123456789abcdef0123456789abcdef\r\n", ReadEOF()]),
    Script("external", "pop3_on", [
        ReadLine(), b"AUTH EXTERNAL\r\n", ReadLine(), b"=\r\n", ReadEOF()]),
    Script("starttls-only-and-max-errors-2", "pop3_only", [
        ReadLine(), b"CAPA\r\n", DOT, b"USER alice\r\n", ReadLine(), b"AUTH\r\n", ReadLine(),
        b"APOP a b\r\n", ReadLine(), b"STAT\r\n", ReadLine(), b"LIST\r\n", ReadEOF()]),
    Script("starttls-only-then-tls", "pop3_only", [
        ReadLine(), b"STLS\r\n", ReadLine(), StartTLS(), b"CAPA\r\n", DOT, b"USER alice\r\n",
        ReadLine(), b"PASS alice-secret\r\n", ReadLine(), *QUIT]),
    Script("apop-only", "pop3_apop", [ReadLine(), b"CAPA\r\n", DOT, b"AUTH\r\n", DOT, *QUIT]),
    Script("implicit-tls", "pop3s", [
        ReadLine(), b"CAPA\r\n", DOT, b"STLS\r\n", ReadLine(), *QUIT], implicit_tls=True),
]


SMTP = [
    Script("greeting-ehlo-helo", "smtp", [
        ReadLine(), b"EHLO client.test\r\n", EHLO_DONE, b"HELO client.test\r\n", ReadLine(),
        b"EHLO\r\n", ReadLine(), b"HELO a b\r\n", ReadLine(), b"NOOP\r\n", ReadLine(),
        b"RSET\r\n", ReadLine(), *QUIT]),
    Script("handler-level-errors-do-not-count", "smtp", [
        ReadLine(), b"VRFY a\r\n", ReadLine(), b"EXPN a\r\n", ReadLine(), b"HELP\r\n",
        ReadLine(), b"STARTTLS\r\n", ReadLine(), b"AUTH\r\n", ReadLine(), b"AUTH CRAM-MD5\r\n",
        ReadLine(), b"MAIL FROM:<a@b>\r\n", ReadLine(), b"RCPT TO:<c@d>\r\n", ReadLine(),
        b"AUTH PLAIN *\r\n", ReadLine(), *QUIT]),
    Script("parser-errors-hit-max-errors", "smtp", [
        ReadLine(), b"DATA\r\n", ReadLine(), b"FOO\r\n", ReadLine(), b"\r\n", ReadLine(),
        b"NOOP\r\r\n", ReadLine(), b"STARTTLSX\r\n", ReadEOF()]),
    Script("auth-plain", "smtp", [
        ReadLine(), b"AUTH PLAIN\r\n", ReadLine(), b"AGFsaWNlAGFsaWNlLXNlY3JldA==\r\n",
        ReadLine(), *QUIT]),
    Script("auth-login-and-wrong-password", "smtp", [
        ReadLine(), b"EHLO client.test\r\n", EHLO_DONE, b"AUTH LOGIN\r\n", ReadLine(),
        b"YWxpY2U=\r\n",
        ReadLine(), b"d3Jvbmc=\r\n", ReadEOF()]),
    Script("auth-login-initial-user", "smtp", [
        ReadLine(), b"AUTH LOGIN YWxpY2U=\r\n", ReadLine(), b"YWxpY2Utc2VjcmV0\r\n", ReadLine(),
        *QUIT]),
    Script("starttls-on", "smtp_on", [
        ReadLine(), b"EHLO client.test\r\n", EHLO_DONE, b"STARTTLS\r\nNOOP\r\n", ReadLine(),
        StartTLS(),
        b"EHLO client.test\r\n", EHLO_DONE, b"STARTTLS\r\n", ReadLine(), *QUIT]),
    Script("cram-md5", "smtp_on", [
        ReadLine(), b"AUTH CRAM-MD5\r\n", ReadLine(),
        b"YWxpY2UgMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\r\n", ReadEOF()]),
    Script("none-envelope-rules", "smtp_on", [
        ReadLine(), b"RCPT TO:<b@y>\r\n", ReadLine(), b"MAIL\r\n", ReadLine(),
        b"MAIL FROM:<a@x>\r\n", ReadLine(), b"MAIL FROM:<a@x>\r\n", ReadLine(), b"RCPT\r\n",
        ReadLine(), b"RSET\r\n", ReadLine(), b"RCPT TO:<b@y>\r\n", ReadLine(), *QUIT]),
    Script("starttls-only", "smtp_only", [
        ReadLine(), b"EHLO client.test\r\n", EHLO_DONE,
        b"AUTH PLAIN AGFsaWNlAGFsaWNlLXNlY3JldA==\r\n",
        ReadLine(), b"MAIL FROM:<a@x>\r\n", ReadLine(), b"STARTTLS\r\n", ReadLine(), StartTLS(),
        b"EHLO client.test\r\n", EHLO_DONE, *QUIT]),
    Script("none-relays", "smtp_none", [
        ReadLine(), b"EHLO client.test\r\n", EHLO_DONE, b"MAIL FROM:<a@x>  SIZE=10\r\n", ReadLine(),
        b"RCPT TO:<b@y>\r\n", ReadLine(), *QUIT]),
    Script("buffer-64", "smtp_small", [
        ReadLine(), b"NOOP " + b"x" * 57 + b"\r\n", ReadLine(), b"NOOP " + b"x" * 58 + b"\r\n",
        ReadEOF()]),
    Script("max-errors-3", "smtp_small", [
        ReadLine(), b"FOO\r\n", ReadLine(), b"VRFY x\r\n", ReadLine(), b"BAR\r\n", ReadLine(),
        b"BAZ\r\n", ReadEOF()]),
    Script("implicit-tls", "smtps", [
        ReadLine(), b"EHLO client.test\r\n", EHLO_DONE, *QUIT], implicit_tls=True),
]


V2_HEAD = b"\r\n\r\n\x00\r\nQUIT\n"

PROXY_HEADERS = {
    "v1": b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
    "v1-tcp6": b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n",
    "v1-unknown": b"PROXY UNKNOWN\r\n",
    "v1-unknown-with-addresses": b"PROXY UNKNOWN 192.0.2.1 192.0.2.2 1 2\r\n",
    # nginx checks the characters only: hex digits, '.' and ':'
    "v1-hex-letters": b"PROXY TCP4 a.b.c.d 192.0.2.2 1 2\r\n",
    "v2": proxy_v2("192.0.2.9", "198.51.100.1", 40003, 143),
    "v2-local": proxy_v2("192.0.2.9", "198.51.100.1", 40003, 143, command=0x20),
    "v2-udp": V2_HEAD + bytes([0x21, 0x12, 0, 12]) + b"x" * 12,
}
BROKEN_PROXY_HEADERS = {
    "v1-port": b"PROXY TCP4 192.0.2.1 192.0.2.2 1 70000\r\n",
    "v1-lower-case": b"proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
    "garbage": b"GARBAGE\r\n",
    "v2-version-3": V2_HEAD + bytes([0x31, 0x11, 0, 12]) + b"x" * 12,
}

PROXY_PROTOCOL = [
    Script(name, "pp", [header, ReadLine(), *QUIT]) for name, header in PROXY_HEADERS.items()
] + [Script(name, "pp", [header, ReadEOF()]) for name, header in BROKEN_PROXY_HEADERS.items()]


@pytest.fixture
def started(pair, auth_server, dovecot, smtp_backend):
    nginx, mailgate = pair
    return nginx.start(MAIL), mailgate.start(MAIL)


WITHHELD_SASL = (r'client sent too long command "a1 AUTHENTICATE .*?" while',
                 'client sent too long command "..." while')
"""mailgate withholds a too long buffer inside a SASL exchange from the log, where
nginx logs the client's base64 credentials (house rule: no secret in a log line)."""

NO_HALF_LOGIN = ((r'(client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command while in auth '
                 r'state, client: \S+, server: [^,]+), login: "[^"]*"'), r"\1")
"""1.22 keeps the login of a rejected CRAM-MD5 answer (and logs it); 1.29.1+ leaves
login and password as they were (ngx_mail_auth_cram_md5(), nginx commit 765642b86), as
mailgate does (docs/differences.md#current-nginx-over-122)."""


def test_imap(started, tls_client_context):
    compare(*started, MAIL, IMAP, tls_context=tls_client_context,
            log_differences=[WITHHELD_SASL, NO_HALF_LOGIN])


def test_pop3(started, tls_client_context):
    compare(*started, MAIL, POP3, tls_context=tls_client_context)


UPSTREAM_WITHOUT_LOGIN = (
    r"^(\[info\] (?:client logged in|proxied session done), client: \S+, server: [^,]+)$",
    r"\1, upstream: 127.0.0.1:UPSTREAM")
"""1.22 leaves ``upstream:`` out of log lines without a login (``smtp_auth none``);
1.29.1+ prints it (ngx_mail_log_error(), nginx commit 239e10793), as mailgate does
(docs/differences.md#current-nginx-over-122)."""


def test_smtp(started, tls_client_context):
    compare(*started, MAIL, SMTP, tls_context=tls_client_context,
            log_differences=[UPSTREAM_WITHOUT_LOGIN])


BROKEN_HEADER_TEXT = (r'broken header: "([^\r\n"]*)\r?\n?"', r'broken header: "\1"')
"""nginx 1.22 quotes every byte it peeked in ``broken header``; 1.23.2+
(ngx_proxy_protocol_read() in src/core/ngx_proxy_protocol.c) and mailgate stop at the
first CR or LF."""


def test_inbound_proxy_protocol(started):
    # nginx only peeks at a header it rejects: its close leaves them unread (a reset)
    compare(*started, MAIL, PROXY_PROTOCOL, log_differences=[BROKEN_HEADER_TEXT],
            reset_is_close=True)


def test_inbound_proxy_header_must_come_in_one_read(gate, auth_server):
    gate.start(MAIL)
    for header, message in (
            (proxy_v2("192.0.2.9", "198.51.100.1", 40003, 143)[:20], "header is too large"),
            (b"PROXY TCP4 192.0.2.1", 'broken header: "PROXY TCP4 192.0.2.1"')):
        transcript = run_script(gate.address("pp"), [header, ReadEOF(timeout=2)])
        assert transcript.replies() == [] and not transcript.timed_out
        wait_for_log(gate, message + " while reading PROXY protocol", "error")
