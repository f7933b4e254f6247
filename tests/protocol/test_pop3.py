"""POP3 pre-auth transcripts (docs/nginx-behaviour.md#pop3: ngx_mail_pop3_auth_state() and
ngx_mail_pop3_parse_command()), on both parser implementations."""

from __future__ import annotations

import base64


from mailgate.protocol import AuthFailed, AuthRequest, Pop3Server, StartTLS

from tests.protocol.harness import Harness, server_config

SALT = b"<1948697756.1795881823@mx.test>"


def pop3(impl, tls=False, **overrides) -> Harness:
    h = Harness(Pop3Server(server_config("pop3", **overrides), tls=tls,
                           implementation=impl, rand=lambda: 1948697756,
                           now=lambda: 1795881823))
    methods = overrides.get("pop3_auth", ())
    greeting = h.start()
    if "apop" in methods or "cram-md5" in methods:
        assert greeting == b"+OK POP3 ready " + SALT + b"\r\n"
    else:
        assert greeting == b"+OK POP3 ready\r\n"
    return h


def request(h) -> AuthRequest:
    req = h.last(AuthRequest)
    assert req is not None and h.m.phase == "auth-request"
    return req


def test_capa_variants(impl):
    assert pop3(impl).feed(b"CAPA\r\n") == (
        b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\n.\r\n")
    h = pop3(impl, starttls="on", pop3_auth=("plain", "apop", "cram-md5", "external"))
    assert h.feed(b"capa extra args\r\n") == (
        b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\n"
        b"SASL PLAIN LOGIN CRAM-MD5 EXTERNAL\r\nSTLS\r\n.\r\n")
    h = pop3(impl, starttls="only", pop3_capabilities=("TOP", "user", "UIDL", "RESP-CODES"))
    assert h.feed(b"CAPA\r\n") == (
        b"+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nSTLS\r\n.\r\n")
    assert h.feed(b"STLS\r\n") == b"+OK\r\n"
    h.call("tls_established")
    assert h.feed(b"CAPA\r\n") == (b"+OK Capability list follows\r\nTOP\r\nuser\r\nUIDL\r\n"
                                   b"RESP-CODES\r\nSASL PLAIN LOGIN\r\n.\r\n")
    assert h.feed(b"STLS\r\n") == b"-ERR invalid command\r\n"


def test_auth_method_list(impl):
    assert pop3(impl).feed(b"AUTH\r\n") == b"+OK methods supported:\r\nPLAIN\r\nLOGIN\r\n.\r\n"
    h = pop3(impl, pop3_auth=("apop",))
    assert h.feed(b"CAPA\r\n") == (
        b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL\r\n.\r\n")
    assert h.feed(b"AUTH\r\n") == b"+OK methods supported:\r\n.\r\n"
    assert h.feed(b"NOOP\r\n") == b"+OK\r\n"


def test_user_pass_keep_spaces(impl):
    h = pop3(impl)
    assert h.feed(b"USER  good man \r\n") == b"+OK\r\n"
    assert h.feed(b"PASS secret pass  \r\n") == b""
    req = request(h)
    assert (req.method, req.login, req.password) == ("plain", b"good man ", b"secret pass  ")


def test_user_state(impl):
    h = pop3(impl)
    assert h.feed(b"PASS x\r\n") == b"-ERR invalid command\r\n"
    assert h.feed(b"USER\r\n") == b"-ERR invalid command\r\n"
    assert h.feed(b"USER u\r\n") == b"+OK\r\n"
    assert h.feed(b"CAPA\r\n").endswith(b"SASL PLAIN LOGIN\r\n.\r\n")
    assert h.feed(b"NOOP\r\n") == b"+OK\r\n"
    assert h.feed(b"USER again\r\n") == b"-ERR invalid command\r\n"
    assert h.feed(b"PASS x\r\n") == b"-ERR invalid command\r\n"
    assert h.m.errors == 0
    assert h.feed(b"USER u\r\nAUTH PLAIN\r\nPASS p\r\n") == (
        b"+OK\r\n-ERR invalid command\r\n-ERR invalid command\r\n")


def test_user_state_capa_never_lists_stls(impl):
    h = pop3(impl, starttls="on")
    h.feed(b"USER u\r\n")
    assert b"STLS" not in h.feed(b"CAPA\r\n")
    assert h.feed(b"STLS\r\n") == b"-ERR invalid command\r\n"


def test_parser_errors_count(impl):
    h = pop3(impl)
    for word in (b"STAT", b"LIST", b"RETR 1", b"USERS x"):
        assert h.feed(word + b"\r\n") == b"-ERR invalid command\r\n"
    assert not h.closed
    assert h.feed(b"QUIT\r\r\n") == b"-ERR invalid command\r\n"
    assert h.closed and h.m.errors == 5


def test_too_many_arguments(impl):
    h = pop3(impl, pop3_auth=("apop",))
    assert h.feed(b"APOP a b c d\r\n") == b"-ERR invalid command\r\n"
    assert h.m.errors == 1
    assert h.feed(b"APOP a b c\r\n") == b"-ERR invalid command\r\n"
    assert h.m.errors == 1


def test_quit_and_pipelining(impl):
    h = pop3(impl)
    assert h.feed(b"NOOP\r\nQUIT\r\nNOOP\r\n") == b"+OK\r\n+OK\r\n"
    assert h.closed


def test_line_limit_is_128(impl):
    h = pop3(impl)
    line = b"NOOP " + b"x" * (128 - 7) + b"\r\n"
    assert h.feed(line) == b"+OK\r\n"
    assert h.feed(b"NOOP " + b"x" * (129 - 7) + b"\r\n") == b"-ERR invalid command\r\n"
    assert h.closed and h.m.errors == 0


def test_apop(impl):
    h = pop3(impl)
    assert h.feed(b"APOP user 0123\r\n") == b"-ERR invalid command\r\n"
    h = pop3(impl, pop3_auth=("plain", "apop"))
    assert h.feed(b"APOP user\r\n") == b"-ERR invalid command\r\n"
    assert h.feed(b"APOP user c4c9334bac560ecc979e58001b3e22fb\r\n") == b""
    req = request(h)
    assert (req.method, req.login, req.password, req.salt) == (
        "apop", b"user", b"c4c9334bac560ecc979e58001b3e22fb", SALT + b"\r\n")


def test_sasl(impl):
    h = pop3(impl)
    assert h.feed(b"AUTH PLAIN\r\n") == b"+ \r\n"
    assert h.feed(b"AGdvb2QAc2VjcmV0\r\n") == b""
    assert request(h).password == b"secret"
    h = pop3(impl)
    assert h.feed(b"AUTH LOGIN\r\n") == b"+ VXNlcm5hbWU6\r\n"
    assert h.feed(b"*\r\n") == b"-ERR invalid command\r\n"
    assert h.feed(b"AUTH LOGIN Z29vZA==\r\n") == b"+ UGFzc3dvcmQ6\r\n"
    assert h.feed(b"c2VjcmV0\r\n") == b""
    assert (request(h).login, request(h).password) == (b"good", b"secret")
    h = pop3(impl, pop3_auth=("plain", "cram-md5"))
    assert h.feed(b"AUTH CRAM-MD5\r\n") == b"+ " + base64.b64encode(SALT) + b"\r\n"
    h = pop3(impl)
    assert h.feed(b"AUTH CRAM-MD5\r\n") == b"-ERR invalid command\r\n"
    assert h.feed(b"AUTH EXTERNAL\r\n") == b"-ERR invalid command\r\n"
    assert h.m.errors == 0


def test_starttls_only(impl):
    h = pop3(impl, starttls="only", pop3_auth=("plain", "apop"))
    for line in (b"USER u", b"APOP u d", b"AUTH", b"AUTH PLAIN"):
        assert h.feed(line + b"\r\n") == b"-ERR invalid command\r\n"
    assert h.feed(b"STLS\r\n") == b"+OK\r\n"
    assert isinstance(h.actions[-1], StartTLS)
    h.call("tls_established")
    assert h.feed(b"USER u\r\n") == b"+OK\r\n"


def test_auth_failure(impl):
    h = pop3(impl)
    h.feed(b"USER u\r\nPASS p\r\n")
    assert h.call("auth_result", AuthFailed(b"Invalid login or password")) == (
        b"-ERR Invalid login or password\r\n")
    assert h.closed


def test_auth_wait_keeps_login(impl):
    h = pop3(impl)
    h.feed(b"USER u\r\nPASS p\r\n")
    h.call("auth_result", AuthFailed(b"no", wait=1))
    assert h.call("timer_expired") == b"-ERR no\r\n"
    assert h.feed(b"PASS p\r\n") == b"-ERR invalid command\r\n"
    assert h.m.login == b"u"
    assert h.feed(b"AUTH PLAIN AHUAcA==\r\n") == b""
    assert request(h).login_attempt == 2
