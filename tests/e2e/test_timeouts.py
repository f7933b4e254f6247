"""nginx's timers as a client meets them: ``timeout`` is one budget for the whole
pre-auth dialogue (commands do not extend it), ``proxy_timeout`` ends an idle relay
(client activity keeps it alive), and ``smtp_greeting_delay`` rejects a client that
talks first."""

from __future__ import annotations

import time

from tests.e2e.gates import wait_for_log
from tests.e2e.scripts import context, each_protocol, login_script
from tests.support.configs import TLS
from tests.support.transcript import ReadEOF, ReadLine, Sleep, StartTLS, run_script

MAIL = """
    server_name mx.test;
    auth_http $auth_http;
""" + TLS + """
    timeout 2s;
    proxy_timeout 1s;
    server { listen 127.0.0.1:${port_imap}; protocol imap; starttls on; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; }
    server { listen 127.0.0.1:${port_smtp}; protocol smtp; }
    server { listen 127.0.0.1:${port_smtp_delay}; protocol smtp; smtp_greeting_delay 1s; }
"""

NOOP = {"imap": (b"n NOOP\r\n", b"n OK completed\r\n"), "pop3": (b"NOOP\r\n", b"+OK\r\n"),
        "smtp": (b"NOOP\r\n", b"250 2.0.0 OK\r\n")}


def test_timeout_is_a_total_pre_auth_budget(gate, auth_server):
    gate.start(MAIL)

    def run(protocol):
        command, answer = NOOP[protocol]
        script = [ReadLine()]
        for _ in range(3):  # a NOOP every half second: each is answered, none extends
            script += [Sleep(0.5), command, ReadLine()]
        started = time.monotonic()
        transcript = run_script(gate.address(protocol), script + [ReadEOF()])
        elapsed = time.monotonic() - started
        assert transcript.closed_by_server
        assert 1.8 <= elapsed < 3.2, elapsed  # re-armed per NOOP, it would be 3.5 s
        # the answers, then the close without a word
        assert transcript.replies()[1:] == [answer] * 3
        wait_for_log(gate, "client timed out (110: Connection timed out) while in auth state"
                     + context(gate, protocol, login=None), "info")

    each_protocol(run)


def test_timeout_keeps_running_through_starttls(gate, auth_server, tls_client_context):
    gate.start(MAIL)
    started = time.monotonic()
    transcript = run_script(gate.address("imap"), [
        ReadLine(), Sleep(1), b"s STARTTLS\r\n", ReadLine(), StartTLS(), b"n NOOP\r\n", ReadLine(),
        ReadEOF()], tls_context=tls_client_context)
    assert transcript.replies()[-1] == b"n OK completed\r\n" and transcript.closed_by_server
    assert 1.8 <= time.monotonic() - started < 2.9  # re-armed, it would be 3 s
    wait_for_log(gate, "client timed out (110: Connection timed out) while in auth state"
                 + context(gate, "imap", login=None, starttls=True), "info")


def test_proxy_timeout_ends_an_idle_relay(gate, auth_server, auth_policy):
    gate.start(MAIL)

    def run(protocol):
        command, _ = NOOP[protocol]
        if protocol == "imap":
            command = b"n NOOP\r\n"
        # busy for 2 s (each command re-arms the 1 s timer), then idle
        busy = []
        for _ in range(4):
            busy += [Sleep(0.5), command, ReadLine()]
        started = time.monotonic()
        transcript = run_script(gate.address(protocol),
                                login_script(protocol, then=[ReadLine(), *busy, ReadEOF()]))
        elapsed = time.monotonic() - started
        assert transcript.closed_by_server and not transcript.timed_out
        assert 2.8 <= elapsed < 4.5, elapsed
        wait_for_log(gate, "client timed out (110: Connection timed out) while proxying"
                     + context(gate, protocol,
                               upstream="{}:{}".format(*auth_policy.backends[protocol])),
                     "info")

    each_protocol(run)


def test_smtp_greeting_delay(gate, auth_server):
    gate.start(MAIL)
    started = time.monotonic()
    transcript = run_script(gate.address("smtp_delay"), [ReadLine(), b"QUIT\r\n", ReadEOF()])
    assert time.monotonic() - started >= 0.9
    assert transcript.replies() == [b"220 mx.test ESMTP ready\r\n", b"221 2.0.0 Bye\r\n"]
    # talking first is refused before any greeting
    transcript = run_script(gate.address("smtp_delay"), [b"EHLO early.example\r\n", ReadEOF()])
    assert transcript.replies() == [b"503 5.5.0 Improper use of SMTP command pipelining\r\n"]
    assert transcript.closed_by_server
    wait_for_log(gate, 'client was rejected before greeting: "EHLO early.example__" while in '
                 "delay pipelining state"
                 + context(gate, "smtp_delay", login=None), "info")
