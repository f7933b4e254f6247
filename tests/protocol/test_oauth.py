"""XOAUTH2 and OAUTHBEARER (RFC 7628) on the three client-facing machines and the
three backend logins: the requests, their limits, the error exchange, the replay.

The table-driven checks every mechanism gets are in test_sasl_table.py; these are
what only the OAuth 2.0 mechanisms do.
"""

from __future__ import annotations

import base64
import json

import pytest
from tests.protocol.harness import Harness, server_config
from tests.protocol.test_sasl_table import (
    INVALID,
    MACHINES,
    PROMPT,
    auth_command,
    b64,
    session,
)

from mailgate.protocol import (
    AuthFailed,
    AuthOK,
    AuthRequest,
    LoginDone,
    LoginFailed,
    sasl,
)

FAILURE = {"imap": b"a1 NO Invalid token\r\n", "pop3": b"-ERR Invalid token\r\n",
           "smtp": b"535 5.7.0 Invalid token\r\n"}
PROTOCOLS = sasl.PROTOCOLS
# a JWT-sized token: 12 KB, as the large providers' tokens come
BIG_TOKEN = b"eyJhbGciOiJSUzI1NiJ9." + b"x" * (12 * 1024) + b".sig"


def xoauth2(user: bytes, token: bytes) -> bytes:
    return b64(b"user=" + user + b"\x01auth=Bearer " + token + b"\x01\x01")


def oauthbearer(user: bytes, token: bytes, extra: bytes = b"") -> bytes:
    return b64(b"n,a=" + user + b"," + b"\x01" + extra + b"auth=Bearer " + token
               + b"\x01\x01")


def refused(h: Harness, oauth_error=None) -> bytes:
    return h.call("auth_result", AuthFailed(b"Invalid token", oauth_error=oauth_error))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_oauthbearer_names_host_and_port(impl, protocol):
    h = session(impl, protocol, {"oauthbearer"})
    response = oauthbearer(b"a=3Db=2Cc", b"tok", b"host=mx.test\x01port=993\x01")
    assert h.feed(auth_command(protocol, b"OAUTHBEARER", response)) == b""
    request = h.last(AuthRequest)
    assert (request.method, request.login, request.password) == (
        "oauthbearer", b"a=b,c", b"tok")
    assert (request.sasl_host, request.sasl_port) == (b"mx.test", b"993")
    # absent: None (no header is sent)
    h = session(impl, protocol, {"oauthbearer"})
    h.feed(auth_command(protocol, b"OAUTHBEARER", oauthbearer(b"u", b"tok")))
    assert (h.last(AuthRequest).sasl_host, h.last(AuthRequest).sasl_port) == (None, None)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", [b"XOAUTH2", b"OAUTHBEARER"])
def test_refused_token_gets_the_error_challenge_first(impl, protocol, name):
    mechanism = sasl.by_name(protocol, name)
    h = session(impl, protocol, {mechanism.keyword})
    encode = xoauth2 if name == b"XOAUTH2" else oauthbearer
    assert h.feed(auth_command(protocol, name, encode(b"u", b"bad"))) == b""
    reply = refused(h)
    assert reply.startswith(PROMPT[protocol]) and not h.closed
    document = json.loads(base64.b64decode(reply[len(PROMPT[protocol]):-2]))
    assert document == ({"status": "400", "schemes": "Bearer"} if name == b"XOAUTH2"
                        else {"status": "invalid_token", "schemes": "bearer"})
    # the client's dummy answer (RFC 7628 section 3.2.3), then the failure
    assert h.feed(mechanism.error_answer + b"\r\n") == FAILURE[protocol]
    assert h.closed and h.m.errors == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_error_fields_come_from_the_auth_answer(impl, protocol):
    h = session(impl, protocol, {"oauthbearer"})
    h.feed(auth_command(protocol, b"OAUTHBEARER", oauthbearer(b"u", b"bad")))
    reply = refused(h, {"status": "insufficient_scope", "scope": "mail \"all\""})
    document = base64.b64decode(reply[len(PROMPT[protocol]):-2])
    assert document == (b'{"status":"insufficient_scope","schemes":"bearer",'
                        b'"scope":"mail \\"all\\""}')


MALFORMED = [
    (b"XOAUTH2", b"!!", "client sent invalid base64 encoding in AUTH XOAUTH2 command"),
    (b"XOAUTH2", b64(b"user=u\x01auth=Bearer t"),
     "client sent invalid request in AUTH XOAUTH2 command"),
    (b"XOAUTH2", b64(b"auth=Bearer t\x01\x01"),
     "client sent invalid login in AUTH XOAUTH2 command"),
    (b"XOAUTH2", b64(b"user=u\x01auth=Basic dTpw\x01\x01"),
     "client sent invalid token in AUTH XOAUTH2 command"),
    (b"XOAUTH2", b64(b"user=u\x01\x01"), "client sent invalid token in AUTH XOAUTH2 command"),
    (b"XOAUTH2", b64(b"user=u\x01auth=Bearer a\r\nb\x01\x01"),
     "client sent invalid token in AUTH XOAUTH2 command"),
    (b"OAUTHBEARER", b64(b"n,a=u,auth=Bearer t\x01\x01"),
     "client sent invalid request in AUTH OAUTHBEARER command"),
    (b"OAUTHBEARER", b64(b"p=tls-unique,,\x01auth=Bearer t\x01\x01"),
     "client sent invalid request in AUTH OAUTHBEARER command"),
    (b"OAUTHBEARER", b64(b"n,u,\x01auth=Bearer t\x01\x01"),
     "client sent invalid login in AUTH OAUTHBEARER command"),
    (b"OAUTHBEARER", b64(b"n,a=u=,\x01auth=Bearer t\x01\x01"),
     "client sent invalid login in AUTH OAUTHBEARER command"),
    (b"OAUTHBEARER", b64(b"n,,\x01port=x\x01auth=Bearer t\x01\x01"),
     "client sent invalid port in AUTH OAUTHBEARER command"),
    (b"OAUTHBEARER", b64(b"n,,\x01=x\x01auth=Bearer t\x01\x01"),
     "client sent invalid request in AUTH OAUTHBEARER command"),
    (b"OAUTHBEARER", b64(b"n,,\x01\x01"),
     "client sent invalid token in AUTH OAUTHBEARER command"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name,response,log", MALFORMED,
                         ids=[f"{m[0].decode()}-{i}" for i, m in enumerate(MALFORMED)])
def test_malformed_request_is_a_protocol_error(impl, protocol, name, response, log):
    h = session(impl, protocol, {"xoauth2", "oauthbearer"})
    assert h.feed(auth_command(protocol, name, response)) == INVALID[protocol]
    assert h.logs("info")[-1] == log
    assert h.m.mail_state == "start" and not h.closed
    assert h.last(AuthRequest) is None
    # and in the continuation form
    h = session(impl, protocol, {"xoauth2", "oauthbearer"})
    assert h.feed(auth_command(protocol, name)) == PROMPT[protocol] + b"\r\n"
    assert h.feed(response + b"\r\n") == INVALID[protocol]
    assert response.decode() not in " ".join(h.logs())


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("ir", [False, True], ids=["", "ir"])
def test_a_12_kb_token_fits_where_other_commands_do_not(impl, protocol, ir):
    h = session(impl, protocol, {"plain", "xoauth2"})
    configured = h.m.buffer.capacity
    response = xoauth2(b"u", BIG_TOKEN)
    assert len(response) > configured
    if ir:
        reply = h.feed_bytewise(auth_command(protocol, b"XOAUTH2", response))
    else:
        assert h.feed(auth_command(protocol, b"XOAUTH2")) == PROMPT[protocol] + b"\r\n"
        reply = h.feed(response + b"\r\n")
    assert reply == b""
    assert h.last(AuthRequest).password == BIG_TOKEN
    assert not any(BIG_TOKEN[-100:].decode() in line for line in h.logs())
    assert refused(h).startswith(PROMPT[protocol])
    assert h.feed(b"\r\n") == FAILURE[protocol]
    # any other command of that size is still too long
    h = session(impl, protocol, {"plain", "xoauth2"})
    long_plain = b64(b"\0u\0" + BIG_TOKEN)
    h.feed(auth_command(protocol, b"PLAIN", long_plain))
    assert h.closed
    assert any("too long command" in line for line in h.logs("info"))
    assert BIG_TOKEN[-100:].decode() not in " ".join(h.logs())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_disabled_oauth_gets_no_large_buffer(impl, protocol):
    h = session(impl, protocol, {"plain"})
    h.feed(auth_command(protocol, b"XOAUTH2", xoauth2(b"u", BIG_TOKEN)))
    assert h.closed and any("too long command" in line for line in h.logs("info"))


def test_buffer_returns_to_its_size_after_a_delayed_failure(impl):
    h = session(impl, "imap", {"xoauth2"})
    h.feed(auth_command("imap", b"XOAUTH2", xoauth2(b"u", BIG_TOKEN)))
    assert h.m.buffer.capacity == sasl.OAUTH_BUFFER
    h.call("auth_result", AuthFailed(b"Invalid token", wait=1))
    assert h.feed(b"\r\n") == b""
    assert h.call("timer_expired") == FAILURE["imap"]
    assert h.m.buffer.capacity == 4096
    assert h.feed(b"a2 NOOP\r\n") == b"a2 OK completed\r\n"


# -- the backend login ----------------------------------------------------------------

GREETING = {"imap": b"* OK ready\r\n", "pop3": b"+OK ready\r\n", "smtp": b"220 ready\r\n"}
CONTINUE = {"imap": b"+ \r\n", "pop3": b"+ \r\n", "smtp": b"334 \r\n"}
DONE = {"imap": b"a1 OK Logged in\r\n", "pop3": b"+OK Logged in\r\n",
        "smtp": b"235 2.7.0 Accepted\r\n"}
REFUSED = {"imap": b"a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
           "pop3": b"-ERR [AUTH] Authentication failed.\r\n",
           "smtp": b"535 5.7.8 Authentication failed\r\n"}


def backend_after(impl, protocol: str, name: bytes, auth_ok: AuthOK, **settings) -> Harness:
    """The backend login of a session whose client logged in with ``name``."""
    mechanism = sasl.by_name(protocol, name)
    config = server_config(protocol, **{f"{protocol}_auth": (mechanism.keyword,)},
                           **settings)
    kwargs = {"client_addr": "127.0.0.1"} if protocol == "smtp" else {}
    h = Harness(MACHINES[protocol](config, implementation=impl, **kwargs))
    h.start()
    if protocol == "smtp":
        h.feed(b"EHLO client\r\n")
    encode = xoauth2 if name == b"XOAUTH2" else oauthbearer
    h.feed(auth_command(protocol, name, encode(b"client", b"client-token")))
    h.call("auth_result", auth_ok)
    backend = Harness(h.m.backend_login())
    backend.start()
    if protocol == "smtp":
        assert backend.feed(GREETING["smtp"]) == b"EHLO mx.test\r\n"
        return backend
    command = b"a1 AUTHENTICATE " if protocol == "imap" else b"AUTH "
    assert backend.feed(GREETING[protocol]) == command + name + b"\r\n"
    return backend


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", [b"XOAUTH2", b"OAUTHBEARER"])
def test_backend_gets_the_mechanism_with_the_token_in_force(impl, protocol, name):
    # the auth server minted a token (and a user) for the backend
    ok = AuthOK("127.0.0.1", 10000, user=b"backend-user", password=b"minted")
    settings = {"proxy_smtp_auth": True} if protocol == "smtp" else {}
    backend = backend_after(impl, protocol, name, ok, **settings)
    if protocol == "smtp":
        assert backend.feed(b"250 ok\r\n") == b"XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]\r\n"
        assert backend.feed(b"250 ok\r\n") == b"EHLO client\r\n"
        assert backend.feed(b"250 ok\r\n") == b"AUTH " + name + b"\r\n"
    mechanism = sasl.by_name(protocol, name)
    response = b64(mechanism.replay_response(b"backend-user", b"minted"))
    assert backend.feed(CONTINUE[protocol]) == response + b"\r\n"
    assert b"minted" in base64.b64decode(response)
    backend.feed(DONE[protocol])
    done = backend.last(LoginDone)
    assert done is not None
    if protocol == "smtp":
        assert done.to_client == b"235 2.0.0 OK\r\n"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", [b"XOAUTH2", b"OAUTHBEARER"])
def test_backend_refusal_runs_the_error_exchange(impl, protocol, name):
    settings = {"proxy_smtp_auth": True} if protocol == "smtp" else {}
    backend = backend_after(impl, protocol, name, AuthOK("127.0.0.1", 10000),
                            proxy_pass_error_message=True, **settings)
    if protocol == "smtp":
        for _ in range(3):      # EHLO, XCLIENT, the client's EHLO
            backend.feed(b"250 ok\r\n")
    backend.feed(CONTINUE[protocol])
    error = PROMPT[protocol] + b64(b'{"status":"invalid_token"}') + b"\r\n"
    assert backend.feed(error) == sasl.by_name(protocol, name).error_answer + b"\r\n"
    backend.feed(REFUSED[protocol])
    failed = backend.last(LoginFailed)
    assert failed is not None and failed.to_client == REFUSED[protocol]
    # the token never reaches a log line, as it is or in the response's base64
    text = " ".join(backend.logs())
    assert "client-token" not in text


def test_backend_echoing_the_response_is_scrubbed(impl):
    backend = backend_after(impl, "imap", b"XOAUTH2", AuthOK("127.0.0.1", 10000))
    response = b64(sasl.encode_xoauth2(b"client", b"client-token"))
    backend.feed(b"+ \r\n")
    backend.feed(b"a1 BAD line " + response + b" rejected\r\n")
    assert response.decode() not in " ".join(backend.logs())
    assert backend.last(LoginFailed).to_client == b"* BAD internal server error\r\n"


def test_smtp_without_proxy_smtp_auth_names_the_user_in_xclient(impl):
    backend = backend_after(impl, "smtp", b"XOAUTH2", AuthOK("127.0.0.1", 10000))
    assert backend.feed(b"250 ok\r\n") == (
        b"XCLIENT ADDR=127.0.0.1 LOGIN=client NAME=[UNAVAILABLE]\r\n")
