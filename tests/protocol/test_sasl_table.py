"""The method table of ``protocol/sasl.py``: what every entry declares is what happens.

The tests walk :data:`sasl.METHODS`: each mechanism's exchange runs on every protocol it
declares, with and without an initial response, and its directive value, capability,
auth_http request, backend password and replay are checked against its entry.  A new
entry needs its client in :data:`CLIENTS` (the tests fail without it).
"""

from __future__ import annotations

import base64
import socket

import pytest
from tests.protocol.harness import Harness, server_config

from mailgate import Config, ConfigError
from mailgate.auth import AuthFacts
from mailgate.auth.http import build_request
from mailgate.config import AuthHttpTarget
from mailgate.config.modules import DIRECTIVES
from mailgate.protocol import (
    AuthFailed,
    AuthOK,
    AuthRequest,
    ConnectBackend,
    ImapServer,
    Pop3Server,
    SmtpServer,
    sasl,
)

SALT = b"<7.1000@mx.test>\r\n"
DIGEST = b"0123456789abcdef0123456789abcdef"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


# how a client runs each mechanism: the challenges it gets and the lines it answers
# with (the first may go with the command), and the credentials that make
CLIENTS = {
    b"PLAIN": ([b""], [b64(b"authz\0good\0secret pass")], b"good", b"secret pass"),
    b"LOGIN": ([sasl.USERNAME_PROMPT, sasl.PASSWORD_PROMPT],
               [b64(b"good"), b64(b"secret pass")], b"good", b"secret pass"),
    b"CRAM-MD5": ([b64(SALT[:-2])], [b64(b"good " + DIGEST)], b"good", DIGEST),
    b"EXTERNAL": ([sasl.USERNAME_PROMPT], [b64(b"good")], b"good", b""),
    b"XOAUTH2": ([b""], [b64(b"user=good\x01auth=Bearer tok.en\x01\x01")], b"good",
                 b"tok.en"),
    b"OAUTHBEARER": ([b""], [b64(b"n,a=good,\x01auth=Bearer tok.en\x01\x01")], b"good",
                     b"tok.en"),
}

# the *_auth values of nginx's ngx_mail_{imap,pop3,smtp}_auth_methods[]
NGINX_KEYWORDS = {
    "imap": ("plain", "login", "cram-md5", "external"),
    "pop3": ("plain", "apop", "cram-md5", "external"),
    "smtp": ("plain", "login", "cram-md5", "external", "none"),
}
# mailgate's own values, after nginx's
OWN_KEYWORDS = ("xoauth2", "oauthbearer")

MACHINES = {"imap": ImapServer, "pop3": Pop3Server, "smtp": SmtpServer}
PROMPT = {"imap": b"+ ", "pop3": b"+ ", "smtp": b"334 "}
INVALID = {"imap": b"a1 BAD invalid command\r\n", "pop3": b"-ERR invalid command\r\n",
           "smtp": b"500 5.5.1 Invalid command\r\n"}
TARGET = AuthHttpTarget("127.0.0.1:9/auth", socket.AF_INET, "127.0.0.1", 9, "/auth",
                        "127.0.0.1", "127.0.0.1:9")

CASES = [(m, p, ir) for m in sasl.MECHANISMS for p in m.protocols
         for ir in ((False, True) if m.initial_response else (False,))]


def case_id(case) -> str:
    mechanism, protocol, ir = case
    return f"{mechanism.name.decode()}-{protocol}{'-ir' if ir else ''}"


def session(impl, protocol: str, methods) -> Harness:
    """A greeted machine with these ``*_auth`` values (SMTP after EHLO)."""
    config = server_config(protocol, **{f"{protocol}_auth": tuple(methods)})
    kwargs = {"client_addr": "127.0.0.1"} if protocol == "smtp" else {}
    h = Harness(MACHINES[protocol](config, implementation=impl, rand=lambda: 7,
                                   now=lambda: 1000, **kwargs))
    h.start()
    if protocol == "smtp":
        h.feed(b"EHLO client\r\n")
    return h


def auth_command(protocol: str, name: bytes, initial: bytes | None = None) -> bytes:
    words = [b"a1 AUTHENTICATE" if protocol == "imap" else b"AUTH", name]
    if initial is not None:
        words.append(initial)
    return b" ".join(words) + b"\r\n"


def run_exchange(h: Harness, mechanism: sasl.Mechanism, protocol: str, ir: bool
                 ) -> AuthRequest:
    """The client side of ``mechanism`` (from CLIENTS) against the machine."""
    challenges, responses, _, _ = CLIENTS[mechanism.name]
    responses = list(responses)
    if ir:
        challenges = challenges[1:]
        reply = h.feed(auth_command(protocol, mechanism.name, responses.pop(0)))
    else:
        reply = h.feed(auth_command(protocol, mechanism.name))
    for challenge, response in zip(challenges, responses):
        assert reply == PROMPT[protocol] + challenge + b"\r\n"
        reply = h.feed(response + b"\r\n")
    assert reply == b"" and len(challenges) == len(responses)
    request = h.last(AuthRequest)
    assert request is not None and h.m.phase == "auth-request"
    return request


def mechanisms_named(protocol: str, reply: bytes) -> list[bytes]:
    """The mechanism names a capability reply announces."""
    if protocol == "imap":
        return [w[5:] for w in reply.split() if w.startswith(b"AUTH=")]
    for line in reply.split(b"\r\n"):
        if protocol == "pop3" and line.startswith(b"SASL"):
            return line.split()[1:]
        if protocol == "smtp" and line[4:9] == b"AUTH ":
            return line[9:].split()
    return []


def capability(h: Harness, protocol: str) -> bytes:
    if protocol == "smtp":
        return h.feed(b"EHLO client\r\n")
    return h.feed(b"a2 CAPABILITY\r\n" if protocol == "imap" else b"CAPA\r\n")


def test_every_mechanism_has_its_client():
    assert set(CLIENTS) == {m.name for m in sasl.MECHANISMS}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_exchange_runs_as_declared(impl, case):
    mechanism, protocol, ir = case
    h = session(impl, protocol, {mechanism.enabling_keyword(protocol)})
    request = run_exchange(h, mechanism, protocol, ir)
    _, _, login, password = CLIENTS[mechanism.name]
    assert (request.protocol, request.method, request.login, request.password) == (
        protocol, mechanism.auth_method, login, password)
    assert (request.salt is not None) == mechanism.salted
    assert h.m.errors == 0
    # the SASL responses stay out of the logs and the actions' reprs
    text = " ".join(h.logs()) + repr(h.actions)
    assert not any(r.decode() in text for r in CLIENTS[mechanism.name][1])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_bad_response_is_rejected_with_nginx_log(impl, case):
    mechanism, protocol, ir = case
    h = session(impl, protocol, {mechanism.enabling_keyword(protocol)})
    reply = h.feed(auth_command(protocol, mechanism.name, b"!" if ir else None))
    if not ir:
        assert reply.startswith(PROMPT[protocol])
        reply = h.feed(b"!\r\n")
    if protocol == "imap" and not ir and len(CLIENTS[mechanism.name][0]) > 1:
        # nginx answers untagged in a step that another challenge follows
        assert reply == b"BAD invalid command\r\n"
    else:
        assert reply == INVALID[protocol]
    assert h.logs("info")[-1] == (
        f"client sent invalid base64 encoding in AUTH {mechanism.name.decode()} command")
    assert h.m.mail_state == "start" and h.m.errors == 0


@pytest.mark.parametrize("case", [c for c in CASES if not c[2]], ids=case_id)
def test_auth_http_backend_and_replay_as_declared(impl, case):
    mechanism, protocol, _ = case
    h = session(impl, protocol, {mechanism.enabling_keyword(protocol)})
    request = run_exchange(h, mechanism, protocol, False)
    facts = AuthFacts(protocol=protocol, method=request.method, login=request.login,
                      password=request.password, login_attempt=1, client_ip="127.0.0.1",
                      salt=request.salt)
    sent = build_request(TARGET, (), facts)
    assert (b"\r\nAuth-Salt: " in sent) == (sasl.AUTH_SALT in mechanism.auth_fields)
    assert b"\r\nAuth-SMTP-" not in sent
    h.call("auth_result", AuthOK("127.0.0.1", 10000))   # no Auth-Pass
    if not mechanism.backend_password and protocol != "smtp":
        assert h.logs("error") == ["auth http server auth did not send password"]
        assert h.closed
        return
    assert h.last(ConnectBackend) is not None
    password = CLIENTS[mechanism.name][3] if mechanism.backend_password else None
    assert h.m.backend_password == password
    backend = Harness(h.m.backend_login())
    backend.start()
    first = {"imap": b"* OK ready\r\n", "pop3": b"+OK ready\r\n", "smtp": b"220 ready\r\n"}
    if mechanism.replay == sasl.SASL_REPLAY:
        # the mechanism itself, its response made anew from the login and token
        command = {"imap": b"a1 AUTHENTICATE ", "pop3": b"AUTH ", "smtp": b"EHLO "}
        reply = backend.feed(first[protocol])
        if protocol == "smtp":  # XCLIENT LOGIN= unless proxy_smtp_auth
            assert reply == b"EHLO mx.test\r\n"
            assert backend.feed(b"250 ok\r\n") == (
                b"XCLIENT ADDR=127.0.0.1 LOGIN=good NAME=[UNAVAILABLE]\r\n")
            return
        assert reply == command[protocol] + mechanism.name + b"\r\n"
        response = b64(mechanism.replay_response(b"good", password))
        assert backend.feed(b"+ \r\n") == response + b"\r\n"
        return
    # PROTOCOL_LOGIN: the protocol's own login with the user name and password
    assert mechanism.replay == sasl.PROTOCOL_LOGIN
    login = {"imap": b"a1 LOGIN {4}\r\n", "pop3": b"USER good\r\n",
             "smtp": b"EHLO mx.test\r\n"}
    assert backend.feed(first[protocol]) == login[protocol]
    if protocol == "smtp":
        assert backend.feed(b"250 ok\r\n") == (
            b"XCLIENT ADDR=127.0.0.1 LOGIN=good NAME=[UNAVAILABLE]\r\n")
    elif protocol == "pop3":
        assert backend.feed(b"+OK\r\n") == b"PASS " + password + b"\r\n"


@pytest.mark.parametrize("case", [c for c in CASES if not c[2]], ids=case_id)
def test_disabled_mechanism(impl, case):
    mechanism, protocol, _ = case
    others = [k for k in sasl.keywords(protocol) if k != mechanism.enabling_keyword(protocol)]
    h = session(impl, protocol, others)
    assert mechanism.name not in mechanisms_named(protocol, capability(h, protocol))
    reply = h.feed(auth_command(protocol, mechanism.name))
    if mechanism.refused_when_disabled:
        assert reply == INVALID[protocol]
    else:
        assert reply == PROMPT[protocol] + CLIENTS[mechanism.name][0][0] + b"\r\n"
    assert h.m.errors == 0


@pytest.mark.parametrize("mechanism", sasl.MECHANISMS, ids=lambda m: m.name.decode())
def test_initial_response_only_where_declared(impl, mechanism):
    for protocol in mechanism.protocols:
        h = session(impl, protocol, {mechanism.enabling_keyword(protocol)})
        assert h.feed(auth_command(protocol, mechanism.name.lower(), b"= x")) == (
            INVALID[protocol])
        if not mechanism.initial_response:
            assert h.feed(auth_command(protocol, mechanism.name, b"=")) == INVALID[protocol]
        assert h.m.errors == 0


@pytest.mark.parametrize("protocol", sorted(NGINX_KEYWORDS))
def test_capabilities_follow_the_table(impl, protocol):
    every = sasl.keywords(protocol)
    h = session(impl, protocol, every)
    assert mechanisms_named(protocol, capability(h, protocol)) == [
        m.name for m in sasl.MECHANISMS if protocol in m.protocols]
    for keyword in every:
        h = session(impl, protocol, {keyword})
        expected = [m.name for m in sasl.MECHANISMS
                    if protocol in m.protocols and m.enabling_keyword(protocol) == keyword]
        assert mechanisms_named(protocol, capability(h, protocol)) == expected
        if protocol == "pop3":
            assert h.feed(b"AUTH\r\n").split(b"\r\n")[1:-2] == expected


@pytest.mark.parametrize("protocol", sorted(NGINX_KEYWORDS))
def test_directive_values_derive_from_the_table(protocol):
    assert sasl.keywords(protocol) == NGINX_KEYWORDS[protocol] + OWN_KEYWORDS
    directive = f"{protocol}_auth"
    for method in sasl.METHODS:
        value = method.keyword.upper()
        text = ("mail { auth_http 127.0.0.1:9; server { listen 127.0.0.1:1; "
                f"protocol {protocol}; {directive} {value}; }} }}")
        if method.keyword in sasl.keywords(protocol):
            (server,) = Config.from_string(text).servers
            assert getattr(server, directive) == {method.keyword}
        else:
            with pytest.raises(ConfigError) as info:
                Config.from_string(text)
            assert str(info.value) == f'invalid value "{value}" in <string>:1'
    assert sasl.directive_summary(protocol) in DIRECTIVES[directive].summary


def test_apop_as_declared(impl):
    h = session(impl, "pop3", {sasl.APOP.keyword})
    assert h.actions[0].data == b"+OK POP3 ready " + SALT  # salted: the greeting has it
    assert h.feed(b"APOP good " + DIGEST + b"\r\n") == b""
    request = h.last(AuthRequest)
    assert (request.method, request.login, request.password, request.salt) == (
        sasl.APOP.auth_method, b"good", DIGEST, SALT)
    facts = AuthFacts(protocol="pop3", method=request.method, login=b"good",
                      password=DIGEST, login_attempt=1, client_ip="127.0.0.1", salt=SALT)
    assert b"\r\nAuth-Salt: " + SALT in build_request(TARGET, (), facts)
    h.call("auth_result", AuthOK("127.0.0.1", 10000))
    assert h.closed and not sasl.APOP.backend_password
    h = session(impl, "pop3", {"plain"})
    assert h.feed(b"APOP good " + DIGEST + b"\r\n") == INVALID["pop3"]


def test_none_as_declared(impl):
    h = session(impl, "smtp", {sasl.NONE.keyword})
    assert h.feed(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n") == b"250 2.0.0 OK\r\n"
    request = h.last(AuthRequest)
    assert request.method == sasl.NONE.auth_method
    facts = AuthFacts(protocol="smtp", method=request.method, login=b"", password=b"",
                      login_attempt=1, client_ip="127.0.0.1", smtp_helo=b"client",
                      smtp_from=request.smtp_from, smtp_to=request.smtp_to)
    sent = build_request(TARGET, (), facts)
    assert all(f"\r\n{name}: ".encode() in sent for name in sasl.NONE.auth_fields)
    assert sasl.NONE.replay == sasl.RELAY
    h.call("auth_result", AuthOK("127.0.0.1", 10000))
    backend = Harness(h.m.backend_login())
    backend.start()
    backend.feed(b"220 ready\r\n")
    backend.feed(b"250 ok\r\n")             # EHLO: XCLIENT follows
    assert backend.feed(b"250 ok\r\n") == b"EHLO client\r\n"
    assert backend.feed(b"250 ok\r\n") == b"MAIL FROM:<a@b>\r\n"
    h = session(impl, "smtp", {"plain"})
    assert h.feed(b"MAIL FROM:<a@b>\r\n") == b"530 5.7.1 Authentication required\r\n"


# the replays each backend login machine knows (imap.py, pop3.py, smtp.py)
REPLAYS = {"imap": {sasl.PROTOCOL_LOGIN, sasl.SASL_REPLAY},
           "pop3": {sasl.PROTOCOL_LOGIN, sasl.SASL_REPLAY},
           "smtp": {sasl.PROTOCOL_LOGIN, sasl.RELAY, sasl.SASL_REPLAY}}


@pytest.mark.parametrize("method", sasl.METHODS, ids=lambda m: m.keyword)
def test_declared_replay_and_auth_fields_are_implemented(method):
    assert all(method.replay in REPLAYS[p] for p in method.protocols)
    facts = AuthFacts(protocol=method.protocols[0], method=method.auth_method, login=b"u",
                      password=b"p", login_attempt=1, client_ip="127.0.0.1", salt=SALT,
                      sasl_host=b"mx", sasl_port=b"993",
                      smtp_helo=b"h", smtp_from=b"MAIL FROM:<>", smtp_to=b"RCPT TO:<t>")
    head = build_request(TARGET, (), facts).split(b"\r\n\r\n")[0]
    sent = {line.split(b":")[0].decode() for line in head.split(b"\r\n")[1:]}
    assert set(method.auth_fields) <= sent
    assert sent - set(method.auth_fields) == {
        "Host", "Auth-Method", "Auth-User", "Auth-Pass", "Auth-Protocol",
        "Auth-Login-Attempt", "Client-IP"}


def test_entries_sharing_an_auth_method_agree():
    for method in sasl.METHODS:
        same = sasl.by_auth_method(method.auth_method)
        assert (same.auth_fields, same.backend_password, same.replay) == (
            method.auth_fields, method.backend_password, method.replay)
    assert sasl.by_auth_method("unknown") is None


def test_exchanges_yield_the_declared_auth_method():
    class Client:
        login = b""

        def decode_base64(self, data):
            return base64.b64decode(data, validate=True)

        def encode_base64(self, data):
            return base64.b64encode(data)

        def session_salt(self):
            return SALT

    for mechanism in sasl.MECHANISMS:
        client = Client()
        _, responses, login, password = CLIENTS[mechanism.name]
        result = mechanism.exchange.begin(client, None)
        for response in responses:
            if result.login is not None:
                client.login = result.login
            result = mechanism.exchange.respond(client, result.step, response)
        assert isinstance(result, sasl.Credentials)
        assert (result.method, result.login, result.password) == (
            mechanism.auth_method, login, password)


def test_machines_grow_their_buffer_only_for_a_mechanism_that_needs_it(impl):
    # the configured size for every other command, however many mechanisms are offered
    assert session(impl, "pop3", {"plain", "xoauth2"}).m.buffer.capacity == 128
    assert session(impl, "imap", {"plain", "oauthbearer"}).m.buffer.capacity == 4096
    assert all(m.min_buffer == 0 for m in sasl.MECHANISMS
               if m.replay != sasl.SASL_REPLAY)
    assert sasl.XOAUTH2.min_buffer == sasl.OAUTHBEARER.min_buffer >= 16384


def test_nginx_mechanisms_reply_to_a_failure_at_once():
    assert all(m.exchange.failed(None, b"no") is None for m in sasl.MECHANISMS
               if m.keyword not in OWN_KEYWORDS)


# -- a mechanism whose failure is a challenge (RFC 7628 section 3.2.2) ----------------

ERROR = b64(b'{"status":"invalid_token"}')
FAILURE = {"imap": b"a1 NO Invalid login\r\n", "pop3": b"-ERR Invalid login\r\n",
           "smtp": b"535 5.7.0 Invalid login\r\n"}


class ErrorChallenge(sasl.OneResponse):
    def failed(self, session, message, error=None):
        assert message == b"Invalid login"
        return sasl.Challenge(ERROR, "failed")


TOY = sasl.Mechanism(name=b"X-TOY", keyword="x-toy", protocols=sasl.PROTOCOLS,
                     exchange=ErrorChallenge(sasl.decode_plain),
                     refused_when_disabled=False, auth_method="x-toy")


@pytest.fixture
def toy(monkeypatch):
    for protocol in TOY.protocols:
        monkeypatch.setitem(sasl._BY_NAME[protocol], TOY.name, TOY)


def toy_failed(h: Harness, protocol: str, ir: bool, wait: float = 0, extra: bytes = b""
               ) -> bytes:
    """X-TOY's credentials, refused: what the client gets."""
    response = b64(b"\0good\0bad")
    if ir:
        assert h.feed(auth_command(protocol, b"X-TOY", response) + extra) == b""
    else:
        assert h.feed(auth_command(protocol, b"X-TOY")) == PROMPT[protocol] + b"\r\n"
        assert h.feed(response + b"\r\n" + extra) == b""
    request = h.last(AuthRequest)
    assert (request.method, request.login, request.password) == ("x-toy", b"good", b"bad")
    assert h.timer is None
    return h.call("auth_result", AuthFailed(b"Invalid login", wait=wait))


@pytest.mark.parametrize("protocol", sasl.PROTOCOLS)
@pytest.mark.parametrize("ir", [False, True], ids=["", "ir"])
def test_failure_challenge_then_the_reply(impl, toy, protocol, ir):
    h = session(impl, protocol, {"plain"})
    assert toy_failed(h, protocol, ir) == PROMPT[protocol] + ERROR + b"\r\n"
    assert h.timer == 60 and not h.closed
    assert h.feed(b"AQ==\r\n") == FAILURE[protocol]
    assert h.closed and h.m.errors == 0
    assert "AQ==" not in " ".join(h.logs())


@pytest.mark.parametrize("protocol", sasl.PROTOCOLS)
def test_failure_challenge_with_auth_wait(impl, toy, protocol):
    h = session(impl, protocol, {"plain"})
    assert toy_failed(h, protocol, False, wait=2) == PROMPT[protocol] + ERROR + b"\r\n"
    assert h.feed(b"AQ==\r\n") == b""
    assert h.timer == 2 and h.m.phase == "auth-sleep"
    assert h.call("timer_expired") == FAILURE[protocol]
    assert h.timer == 60 and h.m.mail_state == "start" and h.m.mechanism is None
    # the next exchange starts afresh
    reply = h.feed(auth_command(protocol, b"PLAIN", b64(b"\0good\0good")))
    assert reply == b"" and h.last(AuthRequest).login_attempt == 2


@pytest.mark.parametrize("protocol", sasl.PROTOCOLS)
def test_failure_challenge_answered_early_or_badly(impl, toy, protocol):
    # the answer came with the credentials: read once the challenge is out
    h = session(impl, protocol, {"plain"})
    assert toy_failed(h, protocol, True, extra=b"AQ==\r\n") == (
        PROMPT[protocol] + ERROR + b"\r\n" + FAILURE[protocol])
    assert h.closed
    # an invalid line answers it as well, with its Auth-Wait
    h = session(impl, protocol, {"plain"})
    toy_failed(h, protocol, True, wait=1)
    assert h.feed(b"AQ==\r\r\n") == b""
    assert h.m.phase == "auth-sleep" and h.m.errors == 1
    assert h.call("timer_expired") == FAILURE[protocol]
