"""Backend login machines (docs/nginx-behaviour.md#backend-login:
ngx_mail_proxy_read_response() and the login handlers of
src/mail/ngx_mail_proxy_module.c), on both implementations."""

from __future__ import annotations

import pytest

from mailgate.inet import TEMPUNAVAIL, UNAVAILABLE
from mailgate.protocol import (
    AuthOK,
    ImapBackendLogin,
    ImapServer,
    LoginDone,
    LoginFailed,
    Pop3BackendLogin,
    SmtpBackendLogin,
    SmtpServer,
)
from mailgate.protocol.smtp import xclient_line, xtext

from tests.protocol.harness import Harness, server_config


def backend(cls, impl, protocol="imap", **kwargs):
    overrides = kwargs.pop("config", {})
    h = Harness(cls(server_config(protocol, **overrides), implementation=impl, **kwargs))
    assert h.start() == b""
    assert h.timer == 60.0
    return h


def imap_backend(impl, **config):
    return backend(ImapBackendLogin, impl, tag=b"a1 ", login=b"good",
                   password=b"secret pass", config=config)


def test_imap_login_with_literals(impl):
    h = imap_backend(impl)
    assert h.feed(b"* OK ready\r\n") == b"a1 LOGIN {4}\r\n"
    assert h.m.log_action == "sending LOGIN command to upstream"
    assert h.feed(b"+ \r\n") == b"good {11}\r\n"
    assert h.feed(b"+ go ahead\r\n") == b"secret pass\r\n"
    assert h.feed(b"a1 OK LOGIN completed\r\n") == b""
    done = h.last(LoginDone)
    assert done.to_client == b"a1 OK LOGIN completed\r\n"
    assert h.timer is None
    assert h.logs("info") == ["client logged in"]


def test_imap_untagged_line_before_final_ok(impl):
    h = imap_backend(impl)
    h.feed(b"* OK\r\n"), h.feed(b"+ \r\n"), h.feed(b"+ \r\n")
    assert h.feed(b"* CAPABILITY IMAP4rev1 IDLE\r\n") == b""
    assert h.last(LoginDone) is None
    h.feed(b"a1 OK done\r\n")
    assert h.last(LoginDone).to_client == b"* CAPABILITY IMAP4rev1 IDLE\r\na1 OK done\r\n"


def test_imap_preauth_greeting_is_refused(impl):
    h = imap_backend(impl)
    h.feed(b"* PREAUTH hi\r\n")
    assert h.last(LoginFailed).to_client == b"* BAD internal server error\r\n"
    assert h.logs("error") == ['upstream sent invalid response: "* PREAUTH hi"']


def test_imap_final_no_with_and_without_pass_error_message(impl):
    for passthrough in (False, True):
        h = imap_backend(impl, proxy_pass_error_message=passthrough)
        h.feed(b"* OK\r\n"), h.feed(b"+ \r\n"), h.feed(b"+ \r\n")
        h.feed(b"a1 NO [AUTHENTICATIONFAILED] backend says no\r\n")
        failed = h.last(LoginFailed)
        if passthrough:
            assert failed.to_client == b"a1 NO [AUTHENTICATIONFAILED] backend says no\r\n"
            assert h.logs("info") == [
                'upstream sent invalid response: "NO [AUTHENTICATIONFAILED] backend says no"']
        else:
            assert failed.to_client == b"* BAD internal server error\r\n"
            assert h.logs("error") == [
                'upstream sent invalid response: "NO [AUTHENTICATIONFAILED] backend says no"']


def test_reply_framing(impl):
    h = imap_backend(impl, proxy_buffer=16)
    assert h.feed(b"*") == b""
    assert h.feed(b" OK") == b""           # 4 bytes but no CRLF yet
    assert h.feed(b" hi\r\n") == b"a1 LOGIN {4}\r\n"
    h.feed(b"+ a much longer continuation line")
    assert h.last(LoginFailed).to_client == b"* BAD internal server error\r\n"
    assert h.logs("error") == ['upstream sent too long response line: "+ a much longer"']


def test_extra_bytes_after_a_step_are_dropped(impl):
    h = imap_backend(impl)
    assert h.feed(b"* OK\r\n* EXTRA junk\r\n") == b"a1 LOGIN {4}\r\n"
    assert h.m.buffer.pending() == b""


def test_pop3_login(impl):
    h = backend(Pop3BackendLogin, impl, "pop3", login=b"good", password=b"p w ")
    assert h.feed(b"+OK POP3 ready\r\n") == b"USER good\r\n"
    assert h.feed(b"+OK\r\n") == b"PASS p w \r\n"
    assert h.feed(b"+OK logged in\r\n") == b""
    assert h.last(LoginDone).to_client == b"+OK logged in\r\n"


def test_pop3_login_failure_passthrough(impl):
    h = backend(Pop3BackendLogin, impl, "pop3", login=b"u", password=b"p",
                config={"proxy_pass_error_message": True})
    h.feed(b"+OK\r\n"), h.feed(b"+OK\r\n")
    h.feed(b"-ERR [AUTH] backend says no\r\n")
    assert h.last(LoginFailed).to_client == b"-ERR [AUTH] backend says no\r\n"


def test_timeout_and_connection_loss(impl):
    h = backend(Pop3BackendLogin, impl, "pop3", login=b"u", password=b"p")
    h.call("timer_expired")
    assert h.last(LoginFailed).to_client == b"-ERR internal server error\r\n"
    assert h.logs("info") == ["upstream timed out (110: Connection timed out)"]
    assert h.actions[-3].action == "connecting to upstream"
    h = backend(Pop3BackendLogin, impl, "pop3", login=b"u", password=b"p")
    h.feed(b"+OK\r\n")
    h.call("connection_lost")
    assert h.last(LoginFailed).to_client == b"-ERR internal server error\r\n"


def smtp_backend(impl, config=None, **kwargs):
    params = dict(login=b"good", password=b"secret pass", auth_method="plain", esmtp=True,
                  helo=b"cl", mail_from=None, rcpt_to=None, client_addr="127.0.0.1",
                  client_host=UNAVAILABLE)
    params.update(kwargs)
    return backend(SmtpBackendLogin, impl, "smtp", config=config or {}, **params)


def test_smtp_xclient_off(impl):
    h = smtp_backend(impl, {"xclient": False}, esmtp=False)
    assert h.feed(b"220 backend ESMTP\r\n") == b"HELO mx.test\r\n"
    assert h.feed(b"250 backend\r\n") == b""
    assert h.last(LoginDone).to_client == b"235 2.0.0 OK\r\n"


def test_smtp_xclient_on(impl):
    h = smtp_backend(impl)
    assert h.feed(b"220 hi\r\n") == b"EHLO mx.test\r\n"
    assert h.feed(b"250-backend\r\n250-PIPELINING\r") == b""
    assert h.feed(b"\n250 8BITMIME\r\n") == (
        b"XCLIENT ADDR=127.0.0.1 LOGIN=good NAME=[UNAVAILABLE]\r\n")
    assert h.feed(b"220 fresh greeting\r\n") == b"EHLO cl\r\n"
    assert h.feed(b"250 ok\r\n") == b""
    assert h.last(LoginDone).to_client == b"235 2.0.0 OK\r\n"


def test_smtp_multiline_waits_for_the_last_line(impl):
    h = smtp_backend(impl)
    h.feed(b"220 hi\r\n")
    assert h.feed(b"250-a\r\n250-b\r\n") == b""
    assert h.feed(b"250 c\r\n").startswith(b"XCLIENT")


def test_smtp_auth_none_replays_mail_rcpt(impl):
    h = smtp_backend(impl, login=b"", password=None, auth_method="none",
                     helo=b"client.example", mail_from=b"MAIL FROM:<a@b>",
                     rcpt_to=b"RCPT TO:<c@d>")
    assert h.feed(b"220 hi\r\n") == b"EHLO mx.test\r\n"
    assert h.feed(b"250 hi\r\n") == b"XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]\r\n"
    assert h.feed(b"250 ok\r\n") == b"EHLO client.example\r\n"
    assert h.feed(b"250 ok\r\n") == b"MAIL FROM:<a@b>\r\n"
    assert h.feed(b"250 ok\r\n") == b"RCPT TO:<c@d>\r\n"
    assert h.feed(b"550 5.1.1 no such user\r\n") == b""
    assert h.last(LoginDone).to_client == b"550 5.1.1 no such user\r\n"


def test_smtp_proxy_smtp_auth(impl):
    h = smtp_backend(impl, {"proxy_smtp_auth": True})
    h.feed(b"220 hi\r\n")
    assert h.feed(b"250 hi\r\n") == b"XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]\r\n"
    assert h.feed(b"250 ok\r\n") == b"EHLO cl\r\n"
    assert h.feed(b"250 ok\r\n") == b"AUTH PLAIN AGdvb2QAc2VjcmV0IHBhc3M=\r\n"
    assert h.feed(b"235 2.7.0 ok\r\nextra") == b""
    assert h.last(LoginDone) is None   # the buffer must end with CRLF
    assert h.feed(b"\r\n") == b""
    assert h.last(LoginDone).to_client == b"235 2.0.0 OK\r\n"
    h = smtp_backend(impl, {"proxy_smtp_auth": True, "xclient": False}, password=None)
    h.feed(b"220 hi\r\n"), h.feed(b"250 hi\r\n")
    assert h.last(LoginFailed).to_client == b"451 4.3.2 Internal server error\r\n"
    assert h.logs("error") == ["no password available"]


def test_smtp_bad_replies(impl):
    h = smtp_backend(impl)
    h.feed(b"554 go away\r\n")
    assert h.last(LoginFailed).to_client == b"451 4.3.2 Internal server error\r\n"
    h = smtp_backend(impl, {"proxy_pass_error_message": True})
    h.feed(b"220 hi\r\n")
    h.feed(b"421 busy\r\n")
    assert h.last(LoginFailed).to_client == b"421 busy\r\n"


def test_xclient_encoding():
    assert xtext(b"a b+c=d\xff\x7f~") == b"a+20b+2Bc+3Dd+FF+7F~"
    assert xclient_line("::1", b"u", "h") == b"XCLIENT ADDR=IPV6:::1 LOGIN=u NAME=h\r\n"
    assert xclient_line("unix:", b"", TEMPUNAVAIL) == (
        b"XCLIENT ADDR=unix: NAME=[TEMPUNAVAIL]\r\n")


@pytest.mark.parametrize("machine, protocol, login", [
    (ImapServer, "imap", b"a1 LOGIN good pw\r\na2 SELECT INBOX\r\n"),
    (SmtpServer, "smtp", b"EHLO cl\r\nAUTH PLAIN AGdvb2QAcHc=\r\nMAIL FROM:<a@b>\r\n"),
])
def test_from_client_machine_to_relay(impl, machine, protocol, login):
    client = Harness(machine(server_config(protocol), implementation=impl))
    client.start()
    client.feed(login)
    client.call("auth_result", AuthOK("127.0.0.1", 1234))
    pipelined = client.m.buffer.pending()
    assert pipelined in (b"a2 SELECT INBOX\r\n", b"MAIL FROM:<a@b>\r\n")
    b = Harness(client.m.backend_login())
    b.start()
    assert b.m.buffer is not client.m.buffer
    assert b.m.impl is client.m.impl


@pytest.mark.parametrize("echo", [b"secret pass", b"c2VjcmV0IHBhc3M=", b"AGdvb2QAc2VjcmV0IHBhc3M="])
@pytest.mark.parametrize("pass_error", [False, True])
def test_backend_echoing_the_password_is_not_logged(impl, echo, pass_error):
    # issue 11: a backend that echoes what it received must not put a password in a log
    h = imap_backend(impl, proxy_pass_error_message=pass_error)
    h.feed(b"* OK\r\n"), h.feed(b"+ \r\n"), h.feed(b"+ \r\n")
    h.feed(b"a1 NO bad password " + echo + b" for good\r\n")
    assert h.last(LoginFailed) is not None
    (line,) = h.logs()
    assert line == 'upstream sent invalid response: "NO bad password ... for good"'


def test_backend_echo_in_too_long_line_is_not_logged(impl):
    h = backend(Pop3BackendLogin, impl, "pop3", login=b"good", password=b"secret pass",
                config={"proxy_buffer": "64"})
    h.feed(b"+OK\r\n"), h.feed(b"+OK\r\n")
    h.feed(b"-ERR secret pass " + b"x" * 60)
    (line,) = h.logs("error")
    assert "secret" not in line and line.startswith('upstream sent too long response line: "-ERR ...')


def test_a_short_password_is_withheld_only_as_a_word(impl):
    h = backend(Pop3BackendLogin, impl, "pop3", login=b"good", password=b"x")
    h.feed(b"+OK\r\n"), h.feed(b"+OK\r\n")
    h.feed(b"-ERR xxx x (x) box\r\n")
    assert h.logs("error") == ['upstream sent invalid response: "-ERR xxx ... (...) box"']
