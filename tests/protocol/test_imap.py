"""IMAP pre-auth transcripts (docs/nginx-behaviour.md#imap: ngx_mail_imap_auth_state() and
ngx_mail_imap_parse_command()), on both parser implementations."""

from __future__ import annotations

import pytest

from mailgate.protocol import (
    AuthFailed,
    AuthInternalError,
    AuthOK,
    AuthRequest,
    AuthRetry,
    Close,
    ConnectBackend,
    ImapServer,
    MachineStateError,
    StartTLS,
)

from tests.protocol.harness import Harness, server_config

ALL = ("plain", "login", "cram-md5", "external")


def imap(impl, tls=False, **overrides) -> Harness:
    h = Harness(ImapServer(server_config("imap", **overrides), tls=tls,
                           implementation=impl, rand=lambda: 1286983414,
                           now=lambda: 1795881752))
    assert h.start() == b"* OK IMAP4 ready\r\n"
    assert h.timer == overrides.get("timeout", 60.0)
    return h


def test_capability_default(impl):
    h = imap(impl)
    assert h.feed(b"a1 CAPABILITY\r\n") == (
        b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\na1 OK completed\r\n")


def test_capability_starttls_on_all_methods(impl):
    h = imap(impl, starttls="on", imap_auth=ALL)
    assert h.feed(b"a1 capability\r\n") == (
        b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5"
        b" AUTH=EXTERNAL STARTTLS\r\na1 OK completed\r\n")


def test_capability_starttls_only_and_after_tls(impl):
    h = imap(impl, starttls="only", imap_auth=("login", "cram-md5"),
             imap_capabilities=("IMAP4rev1", "SASL-IR", "IDLE", "AUTH=GSSAPI"))
    assert h.feed(b"a1 CAPABILITY\r\n") == (
        b"* CAPABILITY IMAP4rev1 SASL-IR IDLE STARTTLS LOGINDISABLED\r\na1 OK completed\r\n")
    assert h.feed(b"a2 STARTTLS\r\n") == b"a2 OK completed\r\n"
    assert isinstance(h.actions[-1], StartTLS)
    assert h.call("tls_established") == b""
    assert h.feed(b"a3 CAPABILITY\r\n") == (
        b"* CAPABILITY IMAP4rev1 SASL-IR IDLE AUTH=GSSAPI AUTH=LOGIN AUTH=CRAM-MD5\r\n"
        b"a3 OK completed\r\n")


def test_implicit_tls_uses_base_capability(impl):
    h = imap(impl, tls=True, starttls="on")
    assert h.feed(b"a CAPABILITY\r\n").startswith(b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\n")
    assert h.feed(b"b STARTTLS\r\n") == b"b BAD invalid command\r\n"


def test_noop_logout_and_empty_tag(impl):
    h = imap(impl)
    assert h.feed(b" NOOP\r\n") == b" OK completed\r\n"
    assert h.feed(b"a1 NOOP x y\n") == b"a1 OK completed\r\n"
    assert h.feed(b"a2   noop\r\n") == b"a2 OK completed\r\n"
    assert h.feed(b"a3 LOGOUT\r\na4 NOOP\r\n") == b"* BYE\r\na3 OK completed\r\n"
    assert h.closed


def test_tag_rules(impl):
    h = imap(impl)
    tag32 = b"A" * 20 + b"z09-._" + b"B" * 6
    assert h.feed(tag32 + b" NOOP\r\n") == tag32 + b" OK completed\r\n"
    assert h.feed(b"A" * 33 + b" NOOP\r\n") == b"* BAD invalid command\r\n"
    assert h.feed(b"a+b NOOP\r\n") == b"* BAD invalid command\r\n"
    assert h.feed(b"\r\n") == b"* BAD invalid command\r\n"
    assert h.m.errors == 3


def test_command_errors(impl):
    h = imap(impl)
    assert h.feed(b"a1 NOOP\r\r\n") == b"a1 BAD invalid command\r\n"
    assert h.feed(b"a2 SELECT INBOX\r\n") == b"a2 BAD invalid command\r\n"
    assert h.feed(b"a3 NOOP1\r\n") == b"a3 BAD invalid command\r\n"
    assert h.feed(b"a4  \r\n") == b"a4 BAD invalid command\r\n"
    assert h.m.errors == 4
    # handler-level rejections are not counted
    assert h.feed(b"a5 LOGIN\r\n") == b"a5 BAD invalid command\r\n"
    assert h.feed(b"a6 LOGIN a b c\r\n") == b"a6 BAD invalid command\r\n"
    assert h.feed(b'a7 LOGIN "" x\r\n') == b"a7 BAD invalid command\r\n"
    assert h.feed(b"a8 AUTHENTICATE CRAM-MD5\r\n") == b"a8 BAD invalid command\r\n"
    assert h.feed(b"a9 AUTHENTICATE\r\n") == b"a9 BAD invalid command\r\n"
    assert h.m.errors == 4
    assert not h.closed
    # the fifth parser-level error closes (max_errors 5)
    assert h.feed(b"b1 LOGIN a b c d\r\nb2 NOOP\r\n") == b"b1 BAD invalid command\r\n"
    assert h.closed
    assert "client sent too many invalid commands" in h.logs("info")


def test_max_errors_setting(impl):
    h = imap(impl, max_errors=1)
    assert h.feed(b"x FOO\r\n") == b"x BAD invalid command\r\n"
    assert h.closed


def login_request(h) -> AuthRequest:
    req = h.last(AuthRequest)
    assert req is not None and h.m.phase == "auth-request"
    return req


def test_login_atoms_quoted_literals(impl):
    h = imap(impl)
    assert h.feed(b'a1 LOGIN "u\\"ser" "p a\\\\ss"\r\n') == b""
    req = login_request(h)
    assert (req.method, req.login, req.password, req.login_attempt) == (
        "plain", b'u"ser', b"p a\\ss", 1)
    assert h.timer is None
    assert h.feed(b"a2 NOOP\r\n") == b""   # not read during the auth request


def test_login_literals(impl):
    h = imap(impl)
    assert h.feed(b"a1 LOGIN {4}\r\n") == b"+ OK\r\n"
    assert h.feed(b"good {11+}\r\nsecret pass\r\n") == b""
    req = login_request(h)
    assert (req.login, req.password) == (b"good", b"secret pass")


def test_literal_zero_takes_one_byte(impl):
    h = imap(impl)
    assert h.feed(b"a1 LOGIN u {0}\r\n") == b"+ OK\r\n"
    assert h.feed(b"\r\n") == b""
    assert login_request(h).password == b"\r"


def test_quoted_then_atom_are_two_arguments(impl):
    h = imap(impl)
    assert h.feed(b'a1 LOGIN "a"b\r\n') == b""
    req = login_request(h)
    assert (req.login, req.password) == (b"a", b"b")


def test_after_literal_only_sp_cr_lf(impl):
    h = imap(impl)
    assert h.feed(b"a1 LOGIN {1}\r\n") == b"+ OK\r\n"
    assert h.feed(b"ux\r\n") == b"a1 BAD invalid command\r\n"
    assert h.m.errors == 1


def test_literal_length_overflow_is_invalid(impl):
    h = imap(impl)
    assert h.feed(b"a1 LOGIN {99999999999999999999}\r\n") == b"a1 BAD invalid command\r\n"


def test_rejected_nonsync_literal_closes(impl):
    h = imap(impl)
    assert h.feed(b"a1 FOO {5+}\r\n") == b"a1 BAD invalid command\r\n"
    assert h.closed


def test_rejected_short_line_ending_in_nonsync_does_not_close(impl):
    h = imap(impl)
    assert h.feed(b"+}\r\n") == b"* BAD invalid command\r\n"
    assert not h.closed


def test_unterminated_quote_reset_per_command(impl):
    # nginx keeps the quote open into later lines; mailgate resets it
    # (docs/differences.md#imap)
    h = imap(impl)
    assert h.feed(b'a1 LOGIN "u p\r\n') == b"a1 BAD invalid command\r\n"
    assert h.feed(b"a2 LOGIN u p\r\n") == b""
    assert login_request(h).login == b"u"


def test_line_limit_and_no_compaction(impl):
    h = imap(impl, imap_client_buffer=64)
    line = b"a1 NOOP " + b"x" * (64 - 10) + b"\r\n"
    assert len(line) == 64
    assert h.feed(line) == b"a1 OK completed\r\n"
    assert h.feed(line[:-2] + b"y\r\n") == b"a1 BAD invalid command\r\n"
    assert h.closed
    assert h.logs("info")[-1].startswith('client sent too long command "a1 NOOP xxx')
    assert h.m.errors == 0


def test_pipelined_burst_hits_limit(impl):
    h = imap(impl, imap_client_buffer=64)
    burst = b"".join(b"a%02d NOOP\r\n" % i for i in range(8))  # 8 x 10 bytes
    out = h.feed(burst)
    assert out == b"".join(b"a%02d OK completed\r\n" % i for i in range(6)) + (
        b"a06 BAD invalid command\r\n")
    assert h.closed


def test_bytewise_feeding_gives_the_same_transcript(impl):
    h = imap(impl)
    assert h.feed_bytewise(b"a1 CAPABILITY\r\nb1 NOOP\n") == (
        b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\na1 OK completed\r\n"
        b"b1 OK completed\r\n")


def test_authenticate_plain(impl):
    h = imap(impl)
    assert h.feed(b"a1 AUTHENTICATE PLAIN\r\n") == b"+ \r\n"
    assert h.feed(b"AGdvb2QAc2VjcmV0IHBhc3M=\r\n") == b""
    req = login_request(h)
    assert (req.method, req.login, req.password) == ("plain", b"good", b"secret pass")
    h.call("auth_result", AuthFailed(b"Invalid login or password"))
    assert h.actions[-2].data == b"a1 NO Invalid login or password\r\n"
    assert h.closed


def test_authenticate_plain_initial_response_and_errors(impl):
    h = imap(impl)
    assert h.feed(b"a1 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHBhc3M=\r\n") == b""
    assert login_request(h).login == b"test"
    h = imap(impl)
    assert h.feed(b"a1 AUTHENTICATE PLAIN Zm9v\r\n") == b"a1 BAD invalid command\r\n"
    assert "client sent invalid login in AUTH PLAIN command" in h.logs("info")
    assert h.feed(b"a2 AUTHENTICATE PLAIN AGZvbw==\r\n") == b"a2 BAD invalid command\r\n"
    assert "client sent invalid password in AUTH PLAIN command" in h.logs("info")
    assert h.feed(b"a3 AUTHENTICATE PLAIN *\r\n") == b"a3 BAD invalid command\r\n"
    assert "client sent invalid base64 encoding in AUTH PLAIN command" in h.logs("info")
    assert h.feed(b"a4 AUTHENTICATE PLAIN\r\n") == b"+ \r\n"
    assert h.feed(b"=\r\n") == b"a4 BAD invalid command\r\n"
    assert h.feed(b"a5 AUTHENTICATE FOO\r\n") == b"a5 BAD invalid command\r\n"
    assert h.feed(b"a6 AUTHENTICATE PLAIN a b\r\n") == b"a6 BAD invalid command\r\n"
    assert h.m.errors == 0


def test_authenticate_login(impl):
    h = imap(impl)
    assert h.feed(b"a1 AUTHENTICATE LOGIN\r\n") == b"+ VXNlcm5hbWU6\r\n"
    assert h.feed(b"Z29vZA==\r\n") == b"+ UGFzc3dvcmQ6\r\n"
    assert h.feed(b"c2VjcmV0IHBhc3M=\r\n") == b""
    req = login_request(h)
    assert (req.login, req.password) == (b"good", b"secret pass")
    h = imap(impl)
    assert h.feed(b"a1 AUTHENTICATE login Z29vZA==\r\n") == b"+ UGFzc3dvcmQ6\r\n"
    assert h.feed(b"\r\n") == b""
    req = login_request(h)
    assert (req.login, req.password) == (b"good", b"")


def test_authenticate_login_bad_username_is_untagged(impl):
    h = imap(impl)
    assert h.feed(b"a1 AUTHENTICATE LOGIN\r\n") == b"+ VXNlcm5hbWU6\r\n"
    assert h.feed(b"*\r\n") == b"BAD invalid command\r\n"
    assert h.feed(b"a2 AUTHENTICATE LOGIN\r\n") == b"+ VXNlcm5hbWU6\r\n"
    assert h.feed(b"dQ==\r\n") == b"+ UGFzc3dvcmQ6\r\n"
    assert h.feed(b"!!\r\n") == b"a2 BAD invalid command\r\n"
    assert h.m.errors == 0


def test_authenticate_cram_md5(impl):
    h = imap(impl, imap_auth=("plain", "cram-md5"))
    salt = b"<1286983414.1795881752@mx.test>"
    import base64
    assert h.feed(b"a1 AUTHENTICATE CRAM-MD5\r\n") == b"+ " + base64.b64encode(salt) + b"\r\n"
    digest = b"0123456789abcdef0123456789abcdef"
    assert h.feed(base64.b64encode(b"good " + digest) + b"\r\n") == b""
    req = login_request(h)
    assert (req.method, req.login, req.password, req.salt) == (
        "cram-md5", b"good", digest, salt + b"\r\n")
    h = imap(impl, imap_auth=("plain", "cram-md5"))
    h.feed(b"a1 AUTHENTICATE CRAM-MD5\r\n")
    assert h.feed(base64.b64encode(b"good short") + b"\r\n") == b"a1 BAD invalid command\r\n"
    assert "client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command" in h.logs("info")


def test_authenticate_external(impl):
    h = imap(impl)
    assert h.feed(b"a1 AUTHENTICATE EXTERNAL\r\n") == b"a1 BAD invalid command\r\n"
    assert h.feed(b"a2 AUTHENTICATE EXTERNAL dXNlcg==\r\n") == b"a2 BAD invalid command\r\n"
    h = imap(impl, imap_auth=("external",))
    assert h.feed(b"a1 AUTHENTICATE EXTERNAL\r\n") == b"+ VXNlcm5hbWU6\r\n"
    assert h.feed(b"dXNlcg==\r\n") == b""
    req = login_request(h)
    assert (req.method, req.login, req.password) == ("external", b"user", b"")
    h = imap(impl, imap_auth=("external",))
    assert h.feed(b"a1 AUTHENTICATE EXTERNAL =\r\n") == b""
    assert login_request(h).login == b""


def test_authenticate_exchange_must_fit_the_buffer(impl):
    h = imap(impl, imap_client_buffer=64)
    assert h.feed(b"a1 AUTHENTICATE LOGIN\r\n") == b"+ VXNlcm5hbWU6\r\n"
    assert h.feed(b"x" * 24 + b"\r\n") == b"+ UGFzc3dvcmQ6\r\n"
    assert h.feed(b"y" * 24 + b"\r\n") == b"a1 BAD invalid command\r\n"
    assert h.closed
    assert h.logs("info")[-1] == 'client sent too long command "..."'
    h = imap(impl, imap_client_buffer=64)
    h.feed(b"a1 AUTHENTICATE LOGIN\r\n")
    assert h.feed(b"Z29vZA==\r\n") == b"+ UGFzc3dvcmQ6\r\n"
    assert h.feed(b"c2VjcmV0\r\n") == b""
    assert login_request(h).password == b"secret"


def test_starttls_only_blocks_login_and_authenticate(impl):
    h = imap(impl, starttls="only")
    assert h.feed(b"a1 LOGIN u p\r\n") == b"a1 BAD invalid command\r\n"
    assert h.feed(b"a2 AUTHENTICATE PLAIN\r\n") == b"a2 BAD invalid command\r\n"
    assert h.feed(b"a3 STARTTLS\r\n") == b"a3 OK completed\r\n"
    h.call("tls_established")
    assert h.feed(b"a4 LOGIN u p\r\n") == b""
    assert h.m.starttls_used


def test_starttls_off(impl):
    h = imap(impl)
    assert h.feed(b"a1 STARTTLS\r\n") == b"a1 BAD invalid command\r\n"
    assert h.m.errors == 0


def test_auth_ok_and_user_override(impl):
    h = imap(impl)
    h.feed(b"a1 LOGIN good secret\r\na2 SELECT INBOX\r\n")
    h.call("auth_result", AuthOK("127.0.0.1", 30143, user=b"other", password=b"pw"))
    conn = h.last(ConnectBackend)
    assert (conn.server, conn.port, conn.upstream) == ("127.0.0.1", 30143, "127.0.0.1:30143")
    assert h.m.login == b"other"
    assert h.m.buffer.pending() == b"a2 SELECT INBOX\r\n"
    backend = h.m.backend_login()
    assert (backend.tag, backend._login, backend._password) == (b"a1 ", b"other", b"pw")


def test_auth_ok_without_password_for_cram_md5(impl):
    import base64
    h = imap(impl, imap_auth=("cram-md5",))
    h.feed(b"a1 AUTHENTICATE CRAM-MD5\r\n")
    h.feed(base64.b64encode(b"u " + b"0" * 32) + b"\r\n")
    out = h.call("auth_result", AuthOK("127.0.0.1", 143, auth_server="127.0.0.1:9000"))
    assert out == b"* BAD internal server error\r\n"
    assert h.closed
    assert h.logs("error") == ["auth http server 127.0.0.1:9000 did not send password"]


def test_auth_internal_error(impl):
    h = imap(impl)
    h.feed(b"a1 LOGIN u p\r\n")
    assert h.call("auth_result", AuthInternalError()) == b"* BAD internal server error\r\n"
    assert h.closed
    with pytest.raises(MachineStateError):
        h.m.auth_result(AuthInternalError())


def test_auth_wait_retry_and_fresh_timeout(impl):
    h = imap(impl, timeout=30)
    assert h.feed(b"b1 LOGIN good bad\r\n\r\n") == b""
    assert h.call("auth_result", AuthFailed(b"Invalid login or password", wait=2)) == b""
    assert h.timer == 2
    assert h.logs("info") == ['client login failed: "Invalid login or password"']
    # after the wait: the error line, a fresh timeout, then the waiting empty line,
    # answered "* BAD" and not with nginx's stale-tag garbage
    out = h.call("timer_expired")
    assert out == b"b1 NO Invalid login or password\r\n* BAD invalid command\r\n"
    assert h.timer == 30
    assert h.feed(b"b2 LOGIN good good\r\n") == b""
    assert login_request(h).login_attempt == 2


def test_auth_retry_status_wait(impl):
    h = imap(impl)
    h.feed(b"a1 LOGIN u p\r\n")
    first = login_request(h)
    h.call("auth_result", AuthRetry(wait=3))
    assert h.timer == 3
    h.call("timer_expired")
    again = h.last(AuthRequest)
    assert again is not first and again == first
    h.call("auth_result", AuthRetry())
    assert h.last(AuthRequest) == first


def test_timeout_is_a_total_budget(impl):
    h = imap(impl, timeout=3)
    for _ in range(3):
        h.feed(b"a NOOP\r\n")
    assert h.all(type(h.actions[1])) == [h.actions[1]]    # armed once, at the greeting
    assert h.call("timer_expired") == b""
    assert h.closed and h.last(Close).timed_out
    assert h.logs("info") == ["client timed out (110: Connection timed out)"]
    assert h.actions[-2].action == "in auth state"


def test_eof_closes_silently(impl):
    h = imap(impl)
    h.feed(b"a1 NO")
    assert h.call("eof_received") == b""
    assert h.closed


def test_certificate_rejected(impl):
    h = imap(impl, tls=True)
    assert h.call("certificate_rejected", True) == b"* BYE No required SSL certificate\r\n"
    h = imap(impl, tls=True)
    assert h.call("certificate_rejected", False) == b"* BYE SSL certificate error\r\n"


def test_no_secret_in_logs_or_reprs(impl):
    h = imap(impl, imap_client_buffer=32)
    h.feed(b"a1 LOGIN user {20}\r\n")
    h.feed(b"hunter2hunter2hunter2")
    assert h.closed
    text = " ".join(h.logs()) + repr(h.actions)
    assert "hunter2" not in text
    assert 'client sent too long command "a1 LOGIN ..."' in h.logs("info")
    h = imap(impl)
    h.feed(b"a1 LOGIN user hunter2\r\n")
    assert "hunter2" not in repr(h.actions)


def test_literal_password_not_logged_after_a_failed_login(impl):
    # found by the machines fuzz target (issue 11): a LOGIN password sent in a literal,
    # with more pipelined behind it, reached a later 'client sent too long command' line
    h = imap(impl, imap_client_buffer=64)
    h.feed(b"a1 LOGIN {4+}\r\nuser {11+}\r\nhunter2pass\r\na2 NOOP")
    h.call("auth_result", AuthFailed(b"no", wait=1))
    h.call("timer_expired")
    h.feed(b" " + b"x" * 40)
    text = " ".join(h.logs())
    assert "hunter2" not in text and "user" not in text
    assert 'client sent too long command "a1 LOGIN ...__...__...__a2 NOOP' in text.replace("\\x0d\\x0a", "__")
