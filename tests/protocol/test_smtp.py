"""SMTP pre-auth transcripts (docs/nginx-behaviour.md#smtp: ngx_mail_smtp_auth_state() and
ngx_mail_smtp_parse_command()), on both parser implementations."""

from __future__ import annotations

import base64


from mailgate.protocol import AuthFailed, AuthOK, AuthRequest, SmtpServer, StartTLS

from tests.protocol.harness import Harness, server_config

CAPS = ("PIPELINING", "SIZE 10485760", "8BITMIME")


def smtp(impl, tls=False, **overrides) -> Harness:
    h = Harness(SmtpServer(server_config("smtp", **overrides), tls=tls, implementation=impl,
                           client_addr="127.0.0.1", rand=lambda: 7, now=lambda: 1000))
    if not overrides.get("smtp_greeting_delay"):
        assert h.start() == b"220 mx.test ESMTP ready\r\n"
    return h


def request(h) -> AuthRequest:
    req = h.last(AuthRequest)
    assert req is not None and h.m.phase == "auth-request"
    return req


def test_ehlo_variants(impl):
    assert smtp(impl).feed(b"EHLO client\r\n") == b"250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n"
    h = smtp(impl, starttls="on", smtp_capabilities=CAPS,
             smtp_auth=("none", "cram-md5", "login", "plain"))
    assert h.feed(b"ehlo client\r\n") == (
        b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n"
        b"250-AUTH PLAIN LOGIN CRAM-MD5\r\n250 STARTTLS\r\n")
    h = smtp(impl, starttls="only", smtp_capabilities=("PIPELINING",))
    assert h.feed(b"EHLO c\r\n") == b"250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
    h = smtp(impl, smtp_auth=("none",), smtp_capabilities=("SIZE 1000",))
    assert h.feed(b"EHLO c\r\n") == b"250-mx.test\r\n250 SIZE 1000\r\n"
    h = smtp(impl, smtp_auth=("none",))
    assert h.feed(b"EHLO c\r\n") == b"250 mx.test\r\n"


def test_helo_and_arguments(impl):
    h = smtp(impl)
    assert h.feed(b"HELO client.example\r\n") == b"250 mx.test\r\n"
    assert h.m.helo == b"client.example" and not h.m.esmtp
    assert h.feed(b"HELO\r\n") == b"501 5.5.4 Invalid argument\r\n"
    assert h.feed(b"EHLO a b\r\n") == b"501 5.5.4 Invalid argument\r\n"
    assert h.feed(b"EHLO x\r\nHELO y\r\n") == b"250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n250 mx.test\r\n"
    assert h.m.esmtp and h.m.helo == b"y"
    assert h.m.errors == 0


def test_simple_commands(impl):
    h = smtp(impl)
    assert h.feed(b"NOOP\r\nRSET\r\n") == b"250 2.0.0 OK\r\n250 2.0.0 OK\r\n"
    for word in (b"VRFY x", b"EXPN x", b"HELP", b"STARTTLS", b"AUTH CRAM-MD5"):
        assert h.feed(word + b"\r\n") == b"500 5.5.1 Invalid command\r\n"
    assert h.m.errors == 0
    assert h.feed(b"AUTH\r\n") == b"501 5.5.4 Invalid argument\r\n"
    assert h.feed(b"DATA\r\n") == b"500 5.5.1 Invalid command\r\n"
    assert h.m.errors == 1
    assert h.feed(b"QUIT\r\nNOOP\r\n") == b"221 2.0.0 Bye\r\n"
    assert h.closed


def test_eleven_arguments(impl):
    h = smtp(impl, smtp_auth=("none",))
    assert h.feed(b"MAIL " + b" ".join([b"a"] * 11) + b"\r\n") == b"250 2.0.0 OK\r\n"
    assert h.feed(b"RSET\r\nMAIL " + b" ".join([b"a"] * 12) + b"\r\n") == (
        b"250 2.0.0 OK\r\n500 5.5.1 Invalid command\r\n")
    assert h.m.errors == 1


def test_mail_requires_auth(impl):
    h = smtp(impl)
    assert h.feed(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n") == (
        b"530 5.7.1 Authentication required\r\n503 5.5.1 Bad sequence of commands\r\n")
    assert h.logs("info") == ['client was rejected: "MAIL FROM:<a@b>__RCPT TO:<c@d>__"']


def test_auth_none_mail_rcpt(impl):
    h = smtp(impl, smtp_auth=("none",))
    assert h.feed(b"RCPT TO:<c@d>\r\n") == b"503 5.5.1 Bad sequence of commands\r\n"
    assert h.feed(b"MAIL\r\n") == b"501 5.5.4 Invalid argument\r\n"
    assert h.feed(b"EHLO client.example\r\n").startswith(b"250")
    assert h.feed(b"MAIL FROM:<a@b>  SIZE=10\r\n") == b"250 2.0.0 OK\r\n"
    assert h.feed(b"MAIL FROM:<x@y>\r\n") == b"503 5.5.1 Bad sequence of commands\r\n"
    assert h.feed(b"RCPT\r\n") == b"501 5.5.4 Invalid argument\r\n"
    assert h.feed(b"RCPT TO:<c@d>\r\nDATA\r\n") == b""
    req = request(h)
    assert (req.method, req.login, req.smtp_helo, req.smtp_from, req.smtp_to) == (
        "none", b"", b"client.example", b"MAIL FROM:<a@b>  SIZE=10", b"RCPT TO:<c@d>")
    h.call("auth_result", AuthOK("127.0.0.1", 25))
    assert h.m.buffer.pending() == b"DATA\r\n"
    backend = h.m.backend_login()
    assert backend._password is None


def test_auth_none_clears_stale_credentials(impl):
    h = smtp(impl, smtp_auth=("none", "plain"))
    h.feed(b"AUTH PLAIN AHUAcA==\r\n")
    h.call("auth_result", AuthFailed(b"no", wait=1))
    h.call("timer_expired")
    h.feed(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n")
    req = request(h)
    assert (req.method, req.login, req.password) == ("none", b"", b"")


def test_starttls_only_does_not_protect_mail(impl):
    h = smtp(impl, smtp_auth=("none",), starttls="only")
    assert h.feed(b"AUTH PLAIN\r\n") == b"500 5.5.1 Invalid command\r\n"
    assert h.feed(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n") == b"250 2.0.0 OK\r\n"
    assert request(h).method == "none"


def test_auth_plain_and_login(impl):
    h = smtp(impl)
    assert h.feed(b"AUTH PLAIN\r\n") == b"334 \r\n"
    assert h.feed(b"AGdvb2QAc2VjcmV0IHBhc3M=\r\n") == b""
    assert request(h).password == b"secret pass"
    h = smtp(impl)
    assert h.feed(b"AUTH LOGIN\r\n") == b"334 VXNlcm5hbWU6\r\n"
    assert h.feed(b"Z29vZA==\r\n") == b"334 UGFzc3dvcmQ6\r\n"
    assert h.feed(b"%\r\n") == b"500 5.5.1 Invalid command\r\n"
    assert h.feed(b"AUTH LOGIN Z29vZA==\r\n") == b"334 UGFzc3dvcmQ6\r\n"
    assert h.feed(b"c2VjcmV0\r\n") == b""
    assert request(h).login == b"good"
    # AUTH PLAIN and LOGIN work even when only "none" is configured
    h = smtp(impl, smtp_auth=("none",))
    assert h.feed(b"AUTH LOGIN\r\n") == b"334 VXNlcm5hbWU6\r\n"


def test_auth_cram_md5_salt_is_lazy_and_reused(impl):
    h = smtp(impl, smtp_auth=("cram-md5",))
    challenge = b"334 " + base64.b64encode(b"<7.1000@mx.test>") + b"\r\n"
    assert h.feed(b"AUTH CRAM-MD5\r\n") == challenge
    assert h.feed(b"*\r\n") == b"500 5.5.1 Invalid command\r\n"
    assert h.feed(b"AUTH CRAM-MD5\r\n") == challenge


def test_auth_failure_codes(impl):
    h = smtp(impl)
    h.feed(b"AUTH PLAIN AHUAcA==\r\n")
    assert h.call("auth_result", AuthFailed(b"Invalid login or password")) == (
        b"535 5.7.0 Invalid login or password\r\n")
    h = smtp(impl)
    h.feed(b"AUTH PLAIN AHUAcA==\r\n")
    assert h.call("auth_result", AuthFailed(b"Temporary failure", error_code=b"451 4.3.0")) == (
        b"451 4.3.0 Temporary failure\r\n")


def test_greeting_delay(impl):
    h = smtp(impl, smtp_greeting_delay=2, timeout=30)
    assert h.start() == b""
    assert h.timer == 2
    assert h.call("timer_expired") == b"220 mx.test ESMTP ready\r\n"
    assert h.timer == 30
    assert h.feed(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"


def test_greeting_delay_rejects_early_talkers(impl):
    h = smtp(impl, smtp_greeting_delay=2)
    h.start()
    assert h.feed(b"EHLO x\r\nMAIL FROM:<a@b>\r\n") == (
        b"503 5.5.0 Improper use of SMTP command pipelining\r\n")
    assert h.closed
    assert h.logs("info") == ['client was rejected before greeting: "EHLO x__MAIL FROM:<a@b>__"']
    assert h.actions[-3].action == "in delay pipelining state"


def test_starttls_forgets_helo_from_to_but_not_esmtp(impl):
    h = smtp(impl, smtp_auth=("none", "plain"), starttls="on")
    h.feed(b"EHLO c\r\nMAIL FROM:<a@b>\r\n")
    assert h.feed(b"STARTTLS\r\n") == b"220 2.0.0 Start TLS\r\n"
    assert isinstance(h.actions[-1], StartTLS)
    assert (h.m.helo, h.m.mail_from, h.m.esmtp) == (None, None, True)
    h.call("tls_established")
    assert h.feed(b"EHLO c\r\n") == b"250-mx.test\r\n250 AUTH PLAIN\r\n"
    assert h.feed(b"STARTTLS\r\n") == b"500 5.5.1 Invalid command\r\n"


def test_no_secret_in_logs(impl):
    h = smtp(impl, smtp_client_buffer=32)
    h.feed(b"AUTH PLAIN AGdvb2QAc2VjcmV0IHBhc3MAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert h.closed
    assert h.logs("info") == ['client sent too long command "AUTH ..."']
    h = smtp(impl, smtp_greeting_delay=1)
    h.start()
    h.feed(b"EHLO x\r\nAUTH PLAIN AGdvb2QAc2VjcmV0\r\n")
    assert h.logs("info") == ['client was rejected before greeting: "EHLO x__AUTH ..."']


SECRET_B64 = base64.b64encode(b"S3cr3tP4ss")


def test_pipelined_auth_login_password_not_logged(impl):
    # issue 11, defect 1: the password line pipelined with the next command was logged
    # in the rejection of that command ("client was rejected: "UzNj...==__MAIL ...")
    h = smtp(impl)
    h.feed(b"EHLO x\r\n")
    assert h.feed(b"AUTH LOGIN\r\n") == b"334 VXNlcm5hbWU6\r\n"
    assert h.feed(base64.b64encode(b"denyuser") + b"\r\n") == b"334 UGFzc3dvcmQ6\r\n"
    h.feed(SECRET_B64 + b"\r\nMAIL FROM:<a@b>\r\n")
    assert request(h).password == b"S3cr3tP4ss"
    h.call("auth_result", AuthFailed(b"no", wait=1))
    h.call("timer_expired")
    logs = h.logs()
    assert 'client was rejected: "...__MAIL FROM:<a@b>__"' in logs
    assert not [line for line in logs if SECRET_B64.decode() in line or "S3cr3t" in line]


def test_whole_pipelined_auth_login_not_logged(impl):
    h = smtp(impl)
    h.feed(b"EHLO x\r\nAUTH LOGIN\r\n" + base64.b64encode(b"denyuser") + b"\r\n"
           + SECRET_B64 + b"\r\nMAIL FROM:<a@b>\r\n")
    h.call("auth_result", AuthFailed(b"no", wait=1))
    h.call("timer_expired")
    assert 'client was rejected: "EHLO x__AUTH ...__...__...__MAIL FROM:<a@b>__"' in h.logs()


def test_pipelined_auth_plain_response_not_logged(impl):
    h = smtp(impl)
    h.feed(b"EHLO x\r\n")
    assert h.feed(b"AUTH PLAIN\r\n") == b"334 \r\n"
    response = base64.b64encode(b"\0denyuser\0S3cr3tP4ss")
    h.feed(response + b"\r\nMAIL FROM:<a@b>\r\n")
    h.call("auth_result", AuthFailed(b"no", wait=1))
    h.call("timer_expired")
    logs = h.logs()
    assert 'client was rejected: "...__MAIL FROM:<a@b>__"' in logs
    assert not [line for line in logs if response.decode() in line]


def test_configured_bytes_that_are_not_utf8_go_on_the_wire_as_read(impl):
    # found by the config fuzz target: server_name.encode() raised for every session
    h = Harness(SmtpServer(server_config("smtp", server_name="mx\udcff.test",
                                         smtp_capabilities=("X\udcfe",)),
                           implementation=impl, client_addr="127.0.0.1"))
    assert h.start() == b"220 mx\xff.test ESMTP ready\r\n"
    assert h.feed(b"EHLO c\r\n") == b"250-mx\xff.test\r\n250-X\xfe\r\n250 AUTH PLAIN LOGIN\r\n"
