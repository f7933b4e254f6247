"""STARTTLS to the backend in the login machines (mailgate's ``proxy_starttls``, or an
auth answer's ``Auth-SSL-Backend: starttls``): the command after the greeting, TLS on
the backend's yes with everything else it sent in the clear dropped (the backend-side
mirror of CVE-2014-3556, RFC 3207 section 4.2), the login over TLS, and the failure
when the backend refuses or does not announce it (docs/differences.md#tls-to-backends)."""

from __future__ import annotations

import pytest

from mailgate.inet import UNAVAILABLE
from mailgate.protocol import (
    AuthOK,
    ImapBackendLogin,
    ImapServer,
    LoginDone,
    LoginFailed,
    Pop3BackendLogin,
    SmtpBackendLogin,
)
from mailgate.protocol.events import ConnectBackend, StartTLSUpstream

from tests.protocol.harness import Harness, server_config


def starting(cls, impl, protocol, **kwargs):
    machine = cls(server_config(protocol), implementation=impl, **kwargs)
    machine.starttls = True
    h = Harness(machine)
    h.start()
    return h


def imap(impl):
    return starting(ImapBackendLogin, impl, "imap", tag=b"a1 ", login=b"good",
                    password=b"secret pass")


def pop3(impl):
    return starting(Pop3BackendLogin, impl, "pop3", login=b"good", password=b"secret pass")


def smtp(impl):
    return starting(SmtpBackendLogin, impl, "smtp", login=b"good", password=b"secret pass",
                    auth_method="plain", esmtp=True, helo=b"cl", mail_from=None, rcpt_to=None,
                    client_addr="127.0.0.1", client_host=UNAVAILABLE)


def test_imap(impl):
    h = imap(impl)
    assert h.feed(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n") == b"a1 STARTTLS\r\n"
    assert h.m.log_action == "sending STARTTLS command to upstream"
    # the reply and, in the same read, lines a man in the middle put after it
    assert h.feed(b"a1 OK Begin TLS\r\n+ injected\r\na1 OK injected\r\n") == b""
    assert h.last(StartTLSUpstream) is not None
    assert h.m.log_action == "SSL handshaking to upstream"
    # more of it before the handshake is over: never read
    assert len(h.m.get_buffer()) == 0 and h.feed(b"+ more\r\n") == b""
    assert h.call("tls_established") == b"a1 LOGIN {4}\r\n"
    assert h.feed(b"+ \r\n") == b"good {11}\r\n"
    assert h.feed(b"+ \r\n") == b"secret pass\r\n"
    h.feed(b"a1 OK done\r\n")
    assert h.last(LoginDone).to_client == b"a1 OK done\r\n"


def test_pop3(impl):
    h = pop3(impl)
    assert h.feed(b"+OK ready\r\n") == b"STLS\r\n"
    assert h.feed(b"+OK Begin TLS\r\n+OK injected\r\n") == b""
    assert h.last(StartTLSUpstream) is not None
    assert h.call("tls_established") == b"USER good\r\n"
    assert h.feed(b"+OK\r\n") == b"PASS secret pass\r\n"
    h.feed(b"+OK logged in\r\n")
    assert h.last(LoginDone).to_client == b"+OK logged in\r\n"


def test_smtp_ehlo_again_over_tls(impl):
    h = smtp(impl)
    assert h.feed(b"220 mx ESMTP\r\n") == b"EHLO mx.test\r\n"
    assert h.feed(b"250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n") == b"STARTTLS\r\n"
    assert h.feed(b"220 go ahead\r\n250 injected\r\n") == b""
    assert h.last(StartTLSUpstream) is not None
    # over TLS: EHLO again (RFC 3207 section 4.2), then the usual XCLIENT login
    assert h.call("tls_established") == b"EHLO mx.test\r\n"
    assert h.feed(b"250-mx\r\n250 XCLIENT ADDR LOGIN NAME\r\n").startswith(b"XCLIENT ADDR=127.0.0.1")
    assert h.feed(b"220 mx ok\r\n") == b"EHLO cl\r\n"


def test_byte_by_byte_reply_then_injection(impl):
    h = pop3(impl)
    h.feed(b"+OK ready\r\n")
    assert h.feed_bytewise(b"+OK go\r\n") == b""
    assert h.last(StartTLSUpstream) is not None
    assert len(h.m.get_buffer()) == 0


@pytest.mark.parametrize("make,greeting,refusal,logged", [
    (imap, b"* OK ready\r\n", b"a1 BAD unknown command\r\n", "a1 BAD unknown command"),
    (imap, b"* OK ready\r\n", b"a1 NO [PRIVACYREQUIRED] no\r\n", "a1 NO [PRIVACYREQUIRED] no"),
    (pop3, b"+OK ready\r\n", b"-ERR unknown command\r\n", "-ERR unknown command"),
])
def test_refused(impl, make, greeting, refusal, logged):
    h = make(impl)
    h.feed(greeting)
    h.feed(refusal)
    assert h.last(LoginFailed).to_client == h.m.INTERNAL_ERROR
    assert h.logs("error") == ['upstream does not support STARTTLS: "%s"' % logged]
    assert h.last(StartTLSUpstream) is None


def test_smtp_not_announced(impl):
    h = smtp(impl)
    h.feed(b"220 mx ESMTP\r\n")
    assert h.feed(b"250-mx\r\n250 PIPELINING\r\n") == b""
    assert h.last(LoginFailed).to_client == b"451 4.3.2 Internal server error\r\n"
    assert h.logs("error") == ['upstream does not support STARTTLS: "250-mx"']


def test_refusal_is_not_passed_on_with_proxy_pass_error_message(impl):
    machine = Pop3BackendLogin(server_config("pop3", proxy_pass_error_message=True),
                               implementation=impl, login=b"u", password=b"p")
    machine.starttls = True
    h = Harness(machine)
    h.start()
    h.feed(b"+OK\r\n")
    h.feed(b"-ERR no\r\n")
    assert h.last(LoginFailed).to_client == b"-ERR internal server error\r\n"


@pytest.mark.parametrize("configured,answer,expected", [
    ({}, None, "off"),
    ({"proxy_starttls": True}, None, "starttls"),
    ({"proxy_ssl": True}, None, "on"),
    ({"proxy_ssl": True}, "off", "off"),
    ({}, "starttls", "starttls"),
    ({"proxy_starttls": True}, "on", "on"),
])
def test_auth_answer_overrides_the_configured_mode(impl, configured, answer, expected):
    m = ImapServer(server_config("imap", **configured), implementation=impl)
    m.start()
    m.receive_data(b"a1 LOGIN good secret\r\n")
    actions = m.auth_result(AuthOK("127.0.0.1", 143, backend_tls=answer))
    (connect,) = [a for a in actions if isinstance(a, ConnectBackend)]
    assert connect.tls == expected
    assert m.backend_login().starttls is (expected == "starttls")
