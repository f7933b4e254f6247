"""The proxy's side towards the backend: the PROXY protocol header it sends, XCLIENT,
``proxy_smtp_auth``, the ``smtp_auth none`` relay, ``proxy_pass_error_message`` with
a backend refusing the login, and a backend that is down, silent, or sends a line
too long — what the client sees and what the log says."""

from __future__ import annotations

import struct

import crc32c
import pytest

from tests.e2e.backends import ProxyHeaderRelay, greet_then, greet_then_close, silent
from tests.e2e.conformance import Script, compare
from tests.e2e.gates import wait_for_log
from tests.e2e.scripts import (
    EHLO_DONE,
    INTERNAL_ERROR,
    PROTOCOLS,
    context,
    each_protocol,
    login_script,
    ok,
    plain_ir,
)
from tests.support.auth_http import DefaultPolicy
from tests.support.clients import imap_fetch, imap_login, open_imap
from tests.support.configs import TLS, one_server_each
from tests.support.messages import DOT_MESSAGE
from tests.support.transcript import ReadEOF, ReadLine, ReadTagged, run_script
from tests.support.users import ALICE, DEFAULT_USERS, JOERG

# -- PROXY protocol towards the backend ------------------------------------------------------

PROXY_PROTOCOL = """
    server_name mx.test;
    auth_http $auth_http;
""" + TLS + """
    server { listen 127.0.0.1:${port_imap}; protocol imap; proxy_protocol on; }
    server { listen 127.0.0.1:${port_pop3} proxy_protocol; protocol pop3; proxy_protocol on;
             set_real_ip_from 127.0.0.1; }
"""


def _relays(tcp_backend, auth_server, dovecot):
    relays = {p: tcp_backend(ProxyHeaderRelay((dovecot.host, port)))
              for p, port in (("imap", dovecot.imap_port), ("pop3", dovecot.pop3_port))}
    auth_server.policy = DefaultPolicy(
        DEFAULT_USERS, {p: (r.host, r.port) for p, r in relays.items()})
    return relays


def test_proxy_protocol_v1_to_the_backend(gate, dovecot, auth_server, tcp_backend):
    relays = _relays(tcp_backend, auth_server, dovecot)
    gate.start(PROXY_PROTOCOL)
    with open_imap(*gate.address("imap")) as imap:
        client_port = imap.sock.getsockname()[1]
        imap_login(imap, ALICE)
        imap.select("INBOX", readonly=True)
        assert imap_fetch(imap, "2") == DOT_MESSAGE
    assert relays["imap"].connections[0].proxy_header == (
        b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n" % (client_port, gate.port("imap")))
    # the client as realip made it from the inbound header; the local side is the proxy's
    for inbound, outbound in (
        (b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 110\r\n",
         b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 %d\r\n" % gate.port("pop3")),
        (b"PROXY TCP6 2001:db8::7 2001:db8::1 40001 110\r\n",
         b"PROXY TCP6 2001:db8::7 127.0.0.1 40001 %d\r\n" % gate.port("pop3")),
    ):
        transcript = run_script(gate.address("pop3"), [inbound, *login_script(
            "pop3", then=[ReadLine(), b"QUIT\r\n", ReadEOF()])])
        assert transcript.replies()[2] == b"+OK Logged in.\r\n"
        assert relays["pop3"].connections[-1].proxy_header == outbound


def _tlvs(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        kind, length = data[0], struct.unpack("!H", data[1:3])[0]
        out.append((kind, data[3:3 + length]))
        data = data[3 + length:]
    return out


PROXY_PROTOCOL_V2 = """
    server_name mx.test;
    auth_http $auth_http;
""" + TLS + """
    proxy_protocol v2;
    server { listen 127.0.0.1:${port_imap}; protocol imap; }
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
"""


def test_proxy_protocol_v2_to_the_backend(
        gate, dovecot, auth_server, tcp_backend, tls_client_context):
    """``proxy_protocol v2`` is nginx 1.31.4's (ngx_proxy_protocol_v2_write() in
    src/core/ngx_proxy_protocol.c): Debian's 1.22.1 only knows on/off, so this is
    mailgate's alone, checked against HAProxy's doc/proxy-protocol.txt, section 2.2."""
    if gate.name == "nginx":
        assert not gate.check_config(PROXY_PROTOCOL_V2).ok
        return
    relays = _relays(tcp_backend, auth_server, dovecot)
    gate.start(PROXY_PROTOCOL_V2)
    with open_imap(*gate.address("imap")) as imap:
        client_port = imap.sock.getsockname()[1]
        imap_login(imap, ALICE)
    header = relays["imap"].connections[-1].proxy_header
    assert header[12:14] == b"\x21\x11"
    assert struct.unpack("!H", header[14:16])[0] == len(header) - 16
    assert header[16:28] == bytes([127, 0, 0, 1, 127, 0, 0, 1]) + struct.pack(
        "!HH", client_port, gate.port("imap"))
    assert [kind for kind, _ in _tlvs(header[28:])] == [0x03]
    _check_crc(header)
    # over TLS: the client's SNI, and the TLS facts
    transcript = run_script(gate.address("imaps"), [
        ReadLine(), b"a1 LOGIN alice alice-secret\r\n", ReadTagged(b"a1"), b"a2 LOGOUT\r\n",
        ReadEOF()], tls_context=tls_client_context, implicit_tls=True, server_hostname="localhost")
    assert b"a1 OK" in transcript.received
    header = relays["imap"].connections[-1].proxy_header
    tlvs = _tlvs(header[28:])
    assert [kind for kind, _ in tlvs] == [0x02, 0x20, 0x03]
    assert tlvs[0][1] == b"localhost"
    ssl = tlvs[1][1]
    assert ssl[0] == 0x01 and struct.unpack("!I", ssl[1:5])[0] == 1  # TLS, no certificate
    facts = _tlvs(ssl[5:])
    assert [kind for kind, _ in facts] == [0x21, 0x23, 0x24, 0x25]
    assert dict(facts)[0x21] == b"TLSv1.3" and dict(facts)[0x25] == b"RSA2048"
    assert dict(facts)[0x23] == b"TLS_AES_256_GCM_SHA384"
    _check_crc(header)


def _check_crc(header: bytes) -> None:
    kind, length = header[-7], struct.unpack("!H", header[-6:-4])[0]
    assert (kind, length) == (0x03, 4)
    assert crc32c.crc32c(header[:-4] + b"\0\0\0\0") == struct.unpack("!I", header[-4:])[0]


# -- SMTP: XCLIENT, proxy_smtp_auth, smtp_auth none -------------------------------------------

SMTP = """
    server_name mx.test;
    auth_http $auth_http;
    server { listen 127.0.0.1:${port_xclient}; protocol smtp; }
    server { listen 127.0.0.1:${port_plain}; protocol smtp; xclient off; }
    server { listen 127.0.0.1:${port_auth}; protocol smtp; proxy_smtp_auth on; }
    server { listen 127.0.0.1:${port_auth_plain}; protocol smtp; proxy_smtp_auth on; xclient off; }
    server { listen 127.0.0.1:${port_none}; protocol smtp; smtp_auth none plain;
             set_real_ip_from 127.0.0.1; listen 127.0.0.1:${port_none_pp} proxy_protocol; }
"""

SMTP_LOGIN = [ReadLine(), b"%(hello)s client.test\r\n", EHLO_DONE,
              b"AUTH PLAIN " + plain_ir(b"alice", b"alice-secret") + b"\r\n", ReadLine(),
              b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n",
              ReadLine(3), b"Subject: x\r\n\r\nhello\r\n.\r\n", ReadLine(), b"QUIT\r\n", ReadEOF()]


def _smtp_login(hello: bytes) -> list:
    return [step % {b"hello": hello} if isinstance(step, bytes) and b"%(hello)s" in step else step
            for step in SMTP_LOGIN]


ALICE_PLAIN = plain_ir(b"alice", b"alice-secret").decode()

BACKEND_COMMANDS = {
    ("xclient", b"EHLO"): ["EHLO mx.test", "XCLIENT ADDR=127.0.0.1 LOGIN=alice NAME=[UNAVAILABLE]",
                           "EHLO client.test"],
    # XCLIENT makes nginx say EHLO; it replays the client's HELO as it was
    ("xclient", b"HELO"): ["EHLO mx.test", "XCLIENT ADDR=127.0.0.1 LOGIN=alice NAME=[UNAVAILABLE]",
                           "HELO client.test"],
    ("plain", b"EHLO"): ["EHLO mx.test"],
    ("plain", b"HELO"): ["HELO mx.test"],
    ("auth", b"EHLO"): ["EHLO mx.test", "XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]",
                        "EHLO client.test", "AUTH PLAIN " + ALICE_PLAIN],
    # (AUTH needs an ESMTP session at the backend: a client's HELO would make it fail)
    ("auth_plain", b"EHLO"): ["EHLO mx.test",
                              "AUTH PLAIN " + ALICE_PLAIN],
}


@pytest.mark.parametrize("server, hello", BACKEND_COMMANDS,
                         ids=[f"{s}-{h.decode()}" for s, h in BACKEND_COMMANDS])
def test_backend_login_commands(gate, smtp_backend, auth_server, server, hello):
    transcript = run_script(gate.start(SMTP).address(server), _smtp_login(hello))
    assert transcript.replies()[2] == b"235 2.0.0 OK\r\n"
    [message] = smtp_backend.wait_for_messages(1)
    assert message.data == b"Subject: x\r\n\r\nhello\r\n"
    [connection] = smtp_backend.connections()
    expected = BACKEND_COMMANDS[server, hello]
    assert connection.command_lines()[:len(expected) + 2] == expected + [
        "MAIL FROM:<alice@example.test>", "RCPT TO:<bob@example.test>"]
    if server.startswith("auth"):
        assert connection.auth_attempts == [("alice", "alice-secret")]


def test_xclient_login_encoding(gate, smtp_backend, auth_server):
    """Debian's 1.22.1 sends LOGIN= raw; 1.29.2+ xtext-encodes it (RFC 3461 section 4;
    docs/differences.md#current-nginx-over-122), as mailgate does.  The backend decodes
    xtext, so both reach it as the same login."""
    transcript = run_script(gate.start(SMTP).address("xclient"), login_script(
        "smtp", JOERG.login_bytes, JOERG.password_bytes, then=[ReadLine(), b"QUIT\r\n", ReadEOF()]))
    assert transcript.replies()[2] == b"235 2.0.0 OK\r\n"
    raw = bytes(smtp_backend.connections()[0].raw)
    login = "jörg".encode() if gate.name == "nginx" else b"j+C3+B6rg"
    assert b"XCLIENT ADDR=127.0.0.1 LOGIN=" + login + b" NAME=[UNAVAILABLE]\r\n" in raw
    assert smtp_backend.connections()[0].xclient["LOGIN"] == JOERG.login


def test_smtp_auth_none_relays_the_envelope(gate, smtp_backend, auth_server):
    smtp_backend.reject_rcpt["nobody@example.test"] = "550 5.1.1 No such user"
    gate.start(SMTP)
    # the backend's answer to RCPT reaches the client whatever it is, and the session goes on
    transcript = run_script(gate.address("none"), [
        ReadLine(), b"EHLO client.test\r\n", EHLO_DONE,
        b"MAIL FROM:<a@example.test> BODY=8BITMIME\r\n",
        ReadLine(), b"RCPT TO:<nobody@example.test>\r\n", ReadLine(),
        b"RCPT TO:<bob@example.test>\r\n", ReadLine(), b"DATA\r\n", ReadLine(),
        b"Subject: relay\r\n\r\n..dot\r\n.\r\n", ReadLine(), b"QUIT\r\n", ReadEOF()])
    assert transcript.replies()[2:6] == [
        b"250 2.0.0 OK\r\n", b"550 5.1.1 No such user\r\n", b"250 2.1.5 OK\r\n",
        b"354 End data with <CR><LF>.<CR><LF>\r\n"]
    [message] = smtp_backend.wait_for_messages(1)
    assert (message.mail_from, message.rcpt_tos, message.data) == (
        "a@example.test", ["bob@example.test"], b"Subject: relay\r\n\r\n.dot\r\n")
    assert smtp_backend.connections()[0].command_lines()[:5] == [
        "EHLO mx.test", "XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]", "EHLO client.test",
        "MAIL FROM:<a@example.test> BODY=8BITMIME", "RCPT TO:<nobody@example.test>"]
    # through the PROXY protocol with realip, XCLIENT carries the real client, IPv6 marked
    run_script(gate.address("none_pp"), [
        b"PROXY TCP6 2001:db8::5 2001:db8::1 40000 25\r\n", ReadLine(), b"HELO relay.test\r\n",
        ReadLine(), b"MAIL FROM:<a@x.test>\r\n", ReadLine(), b"RCPT TO:<b@y.test>\r\n", ReadLine(),
        b"QUIT\r\n", ReadEOF()])
    assert smtp_backend.connections()[1].command_lines()[:3] == [
        "EHLO mx.test", "XCLIENT ADDR=IPV6:2001:db8::5 NAME=[UNAVAILABLE]", "HELO relay.test"]


# -- the backend refuses the login: proxy_pass_error_message ---------------------------------

REFUSING_SERVERS = """
    server { listen 127.0.0.1:${port_imap_pass}; protocol imap; proxy_pass_error_message on; }
    server { listen 127.0.0.1:${port_pop3_pass}; protocol pop3; proxy_pass_error_message on; }
    server { listen 127.0.0.1:${port_smtp_pass}; protocol smtp; proxy_pass_error_message on;
             proxy_smtp_auth on; }
"""
REFUSING = one_server_each(smtp="proxy_smtp_auth on; ") + REFUSING_SERVERS

# what Dovecot (and the SMTP backend) answer a wrong password, after the tag for IMAP
REFUSAL = {
    "imap": b"NO [AUTHENTICATIONFAILED] Authentication failed.",
    "pop3": b"-ERR [AUTH] Authentication failed.",
    "smtp": b"535 5.7.8 Authentication credentials invalid",
}


@pytest.mark.parametrize("pass_error", [False, True], ids=["off", "on"])
def test_backend_refuses_the_login(gate, auth_server, auth_policy, smtp_backend, pass_error):
    # the auth server says yes but hands the backend a wrong password
    auth_server.policy = lambda request: ok(auth_policy.backends[request.protocol],
                                            Auth_Pass="wrong-for-the-backend")
    gate.start(REFUSING)

    def run(protocol):
        port = protocol + ("_pass" if pass_error else "")
        transcript = run_script(gate.address(port), login_script(protocol))
        assert transcript.closed_by_server
        refusal = REFUSAL[protocol]
        if pass_error:
            expected = (b"a1 " if protocol == "imap" else b"") + refusal + b"\r\n"
            assert transcript.replies()[-1] == expected
        else:
            assert transcript.replies()[-1] == INTERNAL_ERROR[protocol]
        upstream = "{}:{}".format(*auth_policy.backends[protocol])
        # nginx logs the line after the IMAP tag, at info when it passes it on
        wait_for_log(gate, f'upstream sent invalid response: "{refusal.decode()}" while reading '
                     "response from upstream" + context(gate, port, upstream=upstream),
                     "info" if pass_error else "error")

    each_protocol(run)


# -- the backend is down, silent, or says too much -----------------------------------------

BROKEN = one_server_each("timeout 1s;", smtp="proxy_smtp_auth on; ")


def test_backend_down(gate, auth_server, port_allocator):
    dead = port_allocator.port()
    auth_server.policy = lambda request: ok(("127.0.0.1", dead), Auth_Pass="x")
    gate.start(BROKEN)

    def run(protocol):
        transcript = run_script(gate.address(protocol), login_script(protocol))
        assert transcript.replies()[-1] == INTERNAL_ERROR[protocol]
        assert transcript.closed_by_server
        wait_for_log(gate, "recv() failed (111: Connection refused) while reading response from "
                     "upstream" + context(gate, protocol, upstream=f"127.0.0.1:{dead}"), "error")

    each_protocol(run)
    port_allocator.release(dead)


def test_backend_silent_hits_the_login_timer(gate, auth_server, tcp_backend):
    backend = tcp_backend(silent)
    auth_server.policy = lambda request: ok((backend.host, backend.port), Auth_Pass="x")
    gate.start(BROKEN)

    def run(protocol):
        transcript = run_script(gate.address(protocol), login_script(protocol))
        assert transcript.replies()[-1] == INTERNAL_ERROR[protocol]
        # nginx's action is still "connecting": no byte came from the backend
        wait_for_log(gate, "upstream timed out (110: Connection timed out) while connecting to "
                     "upstream" + context(gate, protocol, upstream=f"127.0.0.1:{backend.port}"),
                     "info")

    each_protocol(run)


GREETINGS = {"imap": b"* OK ", "pop3": b"+OK ", "smtp": b"220 "}
FIRST_STEP = {"imap": "sending LOGIN command to upstream", "pop3": "sending user name to upstream",
              "smtp": "sending HELO/EHLO to upstream"}


@pytest.mark.parametrize("when", ["at-connect", "after-first-command"])
def test_backend_closing_during_login_is_logged(gate, auth_server, tcp_backend, when):
    # issue 11, defect 5: the client got its error line, the operator nothing (nginx
    # logs nothing either: mailgate says which backend left, and in which step)
    backends = {}
    for protocol in PROTOCOLS:
        if when == "at-connect":
            backends[protocol] = tcp_backend(greet_then_close(b"", lines=0))
        else:
            backends[protocol] = tcp_backend(greet_then_close(GREETINGS[protocol] + b"ready\r\n"))
    auth_server.policy = lambda request: ok(
        (backends[request.protocol].host, backends[request.protocol].port), Auth_Pass="x")
    gate.start(BROKEN)

    def run(protocol):
        transcript = run_script(gate.address(protocol), login_script(protocol))
        assert transcript.replies()[-1] == INTERNAL_ERROR[protocol]
        assert transcript.closed_by_server
        if gate.name == "nginx":
            return
        action = "connecting to upstream" if when == "at-connect" else FIRST_STEP[protocol]
        upstream = f"127.0.0.1:{backends[protocol].port}"
        wait_for_log(gate, "upstream prematurely closed connection while " + action
                     + context(gate, protocol, upstream=upstream), "error")

    each_protocol(run)

INVALID_GREETINGS = {
    "imap": b"* PREAUTH ready", "pop3": b"-ERR go away", "smtp": b"554 5.3.2 not now"}


@pytest.mark.parametrize("case", ["too-long", "invalid"])
def test_backend_greeting(gate, auth_server, tcp_backend, case):
    backends = {}
    for protocol in PROTOCOLS:
        if case == "too-long":  # more than proxy_buffer (4k) without a line end
            greeting = GREETINGS[protocol] + b"x" * 5000
        else:
            greeting = INVALID_GREETINGS[protocol] + b"\r\n"
        backends[protocol] = tcp_backend(greet_then(greeting))
    auth_server.policy = lambda request: ok(
        (backends[request.protocol].host, backends[request.protocol].port), Auth_Pass="x")
    gate.start(BROKEN)

    def run(protocol):
        transcript = run_script(gate.address(protocol), login_script(protocol))
        assert transcript.replies()[-1] == INTERNAL_ERROR[protocol]
        assert transcript.closed_by_server
        if case == "too-long":
            # the buffer is quoted, cut where nginx cuts a log line (2048 bytes)
            wait_for_log(gate, 'upstream sent too long response line: "'
                         + GREETINGS[protocol].decode() + "xxxx", "error")
        else:
            upstream = f"127.0.0.1:{backends[protocol].port}"
            greeting = INVALID_GREETINGS[protocol].decode()
            wait_for_log(gate, f'upstream sent invalid response: "{greeting}"'
                         " while reading response from upstream"
                         + context(gate, protocol, upstream=upstream), "error")

    each_protocol(run)


def test_long_log_lines_are_cut_as_nginx_cuts_them(gate, auth_server, tcp_backend):
    backend = tcp_backend(greet_then(b"* OK " + b"x" * 5000))
    auth_server.policy = lambda request: ok((backend.host, backend.port), Auth_Pass="x")
    run_script(gate.start(BROKEN).address("imap"), login_script("imap"))
    wait_for_log(gate, "too long response line", "error")
    [line] = [line for line in gate.log_lines("error") if "too long response line" in line]
    assert len(line) == 2047 and line.endswith("x")  # the context is cut off too


# -- the same backend failures through nginx and mailgate: transcripts and log lines ---------


def test_backend_failures_match_nginx(pair, auth_server, auth_policy, smtp_backend, tcp_backend,
                                      port_allocator):
    dead = port_allocator.port()
    targets = {"down": ("127.0.0.1", dead), "silent": None}
    silent_backend = tcp_backend(silent)
    targets["silent"] = (silent_backend.host, silent_backend.port)
    for protocol in PROTOCOLS:
        for case, greeting in (("too-long", GREETINGS[protocol] + b"x" * 5000),
                               ("invalid", INVALID_GREETINGS[protocol] + b"\r\n")):
            backend = tcp_backend(greet_then(greeting))
            targets[case, protocol] = (backend.host, backend.port)

    def answer(case):
        def policy(request):
            target = targets.get(case) or targets[case, request.protocol]
            return ok(target, Auth_Pass="x")
        return lambda: setattr(auth_server, "policy", policy)

    def refusing():
        auth_server.policy = lambda request: ok(auth_policy.backends[request.protocol],
                                                Auth_Pass="wrong-for-the-backend")

    scripts = [Script(f"{case}-{protocol}", protocol, login_script(protocol), setup=answer(case))
               for case in ("down", "too-long", "invalid") for protocol in PROTOCOLS]
    scripts.append(Script("silent-imap", "imap", login_script("imap"), setup=answer("silent")))
    scripts += [Script(f"refused-{port}", port, login_script(port.split("_")[0]), setup=refusing)
                for port in ("imap", "pop3", "smtp", "imap_pass", "pop3_pass", "smtp_pass")]
    nginx, mailgate = pair
    body = BROKEN + REFUSING_SERVERS
    compare(nginx.start(body), mailgate.start(body), body, scripts)
    port_allocator.release(dead)
