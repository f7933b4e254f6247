"""Every auth_http answer ngx_mail_auth_http_process_headers() tells apart
(docs/nginx-behaviour.md#auth_http-answer), for IMAP, POP3 and SMTP: what the client
sees and what the error log says (nginx's wording and context)."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conformance import Script, compare
from tests.e2e.gates import log_messages, wait_for_log
from tests.e2e.scripts import (
    INTERNAL_ERROR,
    PROTOCOLS,
    context,
    each_protocol,
    login_script,
    per_protocol,
    rejection,
)
from tests.support.auth_http import CloseReply, NoReply, RawReply, Reply, SequencePolicy
from tests.support.transcript import ReadEOF, ReadLine, ReadTagged, run_script

MAIL = """
    server_name mx.test;
    auth_http $auth_http;
    auth_http_timeout 1s;
    server { listen 127.0.0.1:${port_imap}; protocol imap; imap_auth plain cram-md5 external; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; pop3_auth plain apop cram-md5; }
    server { listen 127.0.0.1:${port_smtp}; protocol smtp; smtp_auth plain login cram-md5; }
    server { listen 127.0.0.1:${port_imap_dead}; protocol imap;
             auth_http 127.0.0.1:${port_dead}/auth; }
    server { listen 127.0.0.1:${port_pop3_dead}; protocol pop3;
             auth_http 127.0.0.1:${port_dead}/auth; }
    server { listen 127.0.0.1:${port_smtp_dead}; protocol smtp;
             auth_http 127.0.0.1:${port_dead}/auth; }
"""


@pytest.fixture
def running(gate):
    return gate.start(MAIL)


def _ok(auth_policy, request, **extra):
    host, port = auth_policy.backends[request.protocol]
    headers = [("Auth-Status", "OK"), ("Auth-Server", host), ("Auth-Port", port)]
    return headers + list(extra.items())


# -- success ----------------------------------------------------------------------------

LOGGED_IN = {
    "imap": b"a1 OK [CAPABILITY ", "pop3": b"+OK Logged in.\r\n", "smtp": b"235 2.0.0 OK\r\n"}

SUCCESSES = {
    # no status line: the answer is read as headers from its first byte
    "no-status-line": lambda p, r: RawReply(b"".join(
        b"%s: %s\r\n" % (k.encode(), str(v).encode()) for k, v in _ok(p, r)) + b"\r\n"),
    # the status code is ignored
    "status-500": lambda p, r: Reply(_ok(p, r), status_line="HTTP/1.0 500 Internal Server Error"),
    # Auth-Status is not needed; LF line ends are fine; header names are case-insensitive
    "no-auth-status": lambda p, r: RawReply(
        b"HTTP/1.0 200 OK\nauth-server: %s\nAUTH-PORT:  %d  \n\n"
        % (p.backends[r.protocol][0].encode(), p.backends[r.protocol][1])),
    # headers with a meaning in HTTP are unknown headers here, whatever their values
    "http-headers": lambda p, r: Reply(_ok(p, r) + [
        ("Content-Length", "abc"), ("Transfer-Encoding", "chunked"), ("Content-Length", "5")]),
    # Auth-User and Auth-Pass override what the client gave
    "overrides": lambda p, r: Reply(_ok(p, r, **{"Auth-User": "bob", "Auth-Pass": "secret pass"})),
}


@pytest.mark.parametrize("answer", SUCCESSES, ids=list(SUCCESSES))
def test_success(running, auth_server, auth_policy, smtp_backend, answer):
    auth_server.policy = lambda request: SUCCESSES[answer](auth_policy, request)
    override = answer == "overrides"
    for protocol in PROTOCOLS:
        credentials = (b"whoever", b"wrong") if override else (b"alice", b"alice-secret")
        transcript = run_script(running.address(protocol),
                                login_script(protocol, *credentials, then=[ReadLine()]))
        assert transcript.replies()[-1].startswith(LOGGED_IN[protocol]), transcript
        # the login in the log is the override
        host, port = auth_policy.backends[protocol]
        login = "bob" if override else "alice"
        wait_for_log(running, f'login: "{login}", upstream: {host}:{port}', "info")
    if override:
        # the SMTP backend saw the override in XCLIENT
        assert smtp_backend.connections()[0].xclient["LOGIN"] == "bob"


# -- failures -----------------------------------------------------------------------------


def test_logged_in_log_line(running, auth_policy):
    for protocol in PROTOCOLS:
        run_script(running.address(protocol), login_script(protocol, then=[ReadLine()]))
        wait_for_log(running, "client logged in" + context(
            running, protocol, upstream="{}:{}".format(*auth_policy.backends[protocol])), "info")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_failure_message_and_close(running, auth_server, protocol):
    auth_server.policy = lambda request: Reply([("Auth-Status", "No  way,  sorry ")])
    transcript = run_script(running.address(protocol), login_script(protocol, password=b"bad"))
    assert transcript.replies()[-1] == rejection(protocol, b"No  way,  sorry")
    assert transcript.closed_by_server
    wait_for_log(running, 'client login failed: "No  way,  sorry" while in http auth state'
                 + context(running, protocol), "info")


def test_failure_message_bytes_in_the_log(running, auth_server):
    auth_server.policy = lambda request: Reply([("Auth-Status", "No way, José")])
    transcript = run_script(running.address("imap"), login_script("imap", password=b"bad"))
    assert transcript.replies()[-1] == rejection("imap", "No way, José".encode())
    wait_for_log(running, 'client login failed: "No way, José"', "info")


def test_smtp_auth_error_code(running, auth_server):
    auth_server.policy = lambda request: Reply(
        [("Auth-Status", "Temporary failure"), ("Auth-Error-Code", "451 4.3.0")])
    transcript = run_script(running.address("smtp"), login_script("smtp"))
    assert transcript.replies()[-1] == b"451 4.3.0 Temporary failure\r\n"
    assert transcript.closed_by_server


def test_bare_auth_status_line_is_a_failure_with_no_text(running, auth_server):
    auth_server.policy = lambda request: RawReply(b"HTTP/1.0 200 OK\r\nAuth-Status\r\n\r\n")
    transcript = run_script(running.address("pop3"), login_script("pop3"))
    assert transcript.replies()[-1] == b"-ERR \r\n" and transcript.closed_by_server


def test_auth_wait_delays_the_failure_then_a_retry_is_attempt_2(running, auth_server, auth_policy):
    auth_server.policy = per_protocol(
        Reply([("Auth-Status", "Invalid login or password"), ("Auth-Wait", "1"),
               ("Auth-Error-Code", "535 5.7.8")]), then=auth_policy)

    def run(protocol):
        retry = login_script(protocol, then=[ReadLine()])[1:]
        if protocol == "smtp":
            retry = retry[2:]  # no second EHLO: the session is kept
        transcript = run_script(running.address(protocol), [
            *login_script(protocol, password=b"wrong", then=[ReadLine()]), *retry])
        failure = rejection(protocol, b"Invalid login or password", b"535 5.7.8")
        assert transcript.replies()[len(login_script(protocol)) // 2] == failure
        assert transcript.replies()[-1].startswith(LOGGED_IN[protocol])
        wait_for_log(running, 'client login failed: "Invalid login or password" while in '
                     "http auth state" + context(running, protocol), "info")

    each_protocol(run)
    for protocol in PROTOCOLS:
        first, second = [r for r in auth_server.requests if r.protocol == protocol]
        # the failure came after Auth-Wait: only then could the client try again
        assert 0.9 <= second.received_at - first.received_at < 3
        assert (first.attempt, first.password, second.attempt, second.password) == (
            1, "wrong", 2, "alice-secret")


def test_wait_then_ok_sends_nothing_meanwhile(running, auth_server, auth_policy):
    auth_server.policy = per_protocol(Reply([("Auth-Status", "WAIT"), ("Auth-Wait", "1")]),
                                      then=auth_policy)

    def run(protocol):
        transcript = run_script(running.address(protocol),
                                login_script(protocol, then=[ReadLine()]))
        assert transcript.replies()[-1].startswith(LOGGED_IN[protocol])
        # nothing reached the client while nginx waited
        assert len(transcript.replies()) == len(login_script(protocol)) // 2 + 1

    each_protocol(run)
    for protocol in PROTOCOLS:
        first, second = [r for r in auth_server.requests if r.protocol == protocol]
        assert 0.9 <= second.received_at - first.received_at < 3
        # the same request again: WAIT does not count as a login attempt
        assert first.raw == second.raw and first.attempt == 1


def test_wait_without_auth_wait(running, auth_server, auth_policy):
    """nginx re-asks at once and keeps its WAIT flag, so every later answer except a
    failure is taken as WAIT again: it asks in a loop.  mailgate asks once more and
    takes the next answer as it is (nginx bug not reproduced)."""
    answers = [Reply([("Auth-Status", "WAIT")])] + [
        lambda request: Reply(_ok(auth_policy, request))] * 19
    auth_server.policy = SequencePolicy(
        answers, then=lambda request: Reply([("Auth-Status", "stop")]))
    transcript = run_script(running.address("pop3"), login_script("pop3", then=[ReadLine()]))
    if running.name == "nginx":
        assert transcript.replies()[-1] == b"-ERR stop\r\n"
        assert len(auth_server.requests) == 21
    else:
        assert transcript.replies()[-1] == LOGGED_IN["pop3"]
        assert len(auth_server.requests) == 2


# -- internal errors ------------------------------------------------------------------------

AUTH = "auth http server 127.0.0.1:%d"

INTERNAL = {
    "no-server": (lambda p, r: Reply([("Auth-Status", "OK"), ("Auth-Port", "143")]),
                  "error", AUTH + " did not send server or port"),
    "no-port": (lambda p, r: Reply([("Auth-Status", "OK"), ("Auth-Server", "127.0.0.1")]),
                "error", AUTH + " did not send server or port"),
    "hostname": (lambda p, r: Reply([("Auth-Server", "localhost"), ("Auth-Port", "143")]),
                 "error", AUTH + ' sent invalid server address:"localhost"'),
    "port-0": (lambda p, r: Reply([("Auth-Server", "127.0.0.1"), ("Auth-Port", "0")]),
               "error", AUTH + ' sent invalid server port:"0"'),
    "port-70000": (lambda p, r: Reply([("Auth-Server", "127.0.0.1"), ("Auth-Port", "70000")]),
                   "error", AUTH + ' sent invalid server port:"70000"'),
    # a TAB is not whitespace: it stays in the value
    "tab-before-port": (lambda p, r: Reply([("Auth-Server", "127.0.0.1"), ("Auth-Port", "\t143")]),
                        "error", AUTH + ' sent invalid server port:"\t143"'),
    "underscore": (lambda p, r: Reply(_ok(p, r) + [("X_Extra", "1")]),
                   "error", AUTH + " sent invalid header in response"),
    "space-in-name": (lambda p, r: RawReply(b"HTTP/1.0 200 OK\r\nAuth Status: OK\r\n\r\n"),
                      "error", AUTH + " sent invalid header in response"),
    "bare-cr": (lambda p, r: RawReply(b"HTTP/1.0 200 OK\rAuth-Status: OK\r\n\r\n"),
                "error", AUTH + " sent invalid response"),
    "slow": (lambda p, r: NoReply(hold=5),
             "error", AUTH + " timed out (110: Connection timed out)"),
    "wait-then-slow": (None, "error", AUTH + " timed out (110: Connection timed out)"),
    "close-early": (lambda p, r: CloseReply(), None, None),
    "half-answer": (lambda p, r: RawReply(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n",
                                          chunks=2, pause=5),
                    "error", AUTH + " timed out (110: Connection timed out)"),
}


@pytest.mark.parametrize("case", INTERNAL, ids=list(INTERNAL))
def test_internal_error(running, auth_server, auth_policy, case):
    answer, level, message = INTERNAL[case]
    if case == "wait-then-slow":
        auth_server.policy = per_protocol(Reply([("Auth-Status", "WAIT")]),
                                          then=lambda request: NoReply(hold=5))
    else:
        auth_server.policy = lambda request: answer(auth_policy, request)

    def run(protocol):
        started = time.monotonic()
        transcript = run_script(running.address(protocol), login_script(protocol))
        assert transcript.replies()[-1] == INTERNAL_ERROR[protocol]
        assert transcript.closed_by_server
        if case in ("slow", "half-answer", "wait-then-slow"):
            assert 0.9 <= time.monotonic() - started < 3  # auth_http_timeout 1s
        if message is not None:
            wait_for_log(running, message % auth_server.port + " while in http auth state"
                         + context(running, protocol), level)

    each_protocol(run)
    if message is None:
        # nginx says nothing when the answer ends early
        time.sleep(0.2)
        assert not [m for m in log_messages(running, "error") if "auth http" in m]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_oversize_answer(running, auth_server, auth_policy, protocol):
    """nginx reads the answer into 1024 bytes: past that it never completes it and gives
    up with an internal error (at once or at auth_http_timeout, as the reads fall);
    mailgate accepts a larger answer, so that it never fails where nginx succeeds
    (docs/differences.md#auth_http)."""
    auth_server.policy = lambda request: Reply(
        _ok(auth_policy, request) + [("X-Padding", "x" * 1100)])
    transcript = run_script(running.address(protocol), login_script(protocol, then=[ReadLine()]))
    if running.name == "nginx":
        assert transcript.replies()[-1] == INTERNAL_ERROR[protocol]
    else:
        assert transcript.replies()[-1].startswith(LOGGED_IN[protocol])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_auth_server_down(running, protocol):
    port = protocol + "_dead"
    transcript = run_script(running.address(port), login_script(protocol))
    assert transcript.replies()[-1] == INTERNAL_ERROR[protocol] and transcript.closed_by_server
    wait_for_log(running, "(111: Connection refused) while in http auth state"
                 + context(running, port), "error")


# -- the password the backend needs -----------------------------------------------------

CRAM_ANSWER = b"YWxpY2UgMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\r\n"  # alice + 32 hex digits

NO_PASSWORD_LOGINS = {
    "pop3-apop": ("pop3", [
        ReadLine(), b"APOP alice 0123456789abcdef0123456789abcdef\r\n", ReadEOF()]),
    "pop3-cram-md5": ("pop3", [ReadLine(), b"AUTH CRAM-MD5\r\n", ReadLine(), CRAM_ANSWER, ReadEOF()]),
    "imap-cram-md5": ("imap", [
        ReadLine(), b"a1 AUTHENTICATE CRAM-MD5\r\n", ReadLine(), CRAM_ANSWER, ReadEOF()]),
    "imap-external": ("imap", [ReadLine(), b"a1 AUTHENTICATE EXTERNAL YWxpY2U=\r\n", ReadEOF()]),
}


@pytest.mark.parametrize("case", NO_PASSWORD_LOGINS, ids=list(NO_PASSWORD_LOGINS))
def test_no_password_for_apop_cram_md5_external(running, auth_server, auth_policy, case):
    protocol, script = NO_PASSWORD_LOGINS[case]
    auth_server.policy = lambda request: Reply(_ok(auth_policy, request))
    transcript = run_script(running.address(protocol), script)
    assert transcript.replies()[-1] == INTERNAL_ERROR[protocol] and transcript.closed_by_server
    wait_for_log(running, (AUTH % auth_server.port)
                 + " did not send password while in http auth state"
                 + context(running, protocol), "error")
    [request] = auth_server.requests
    assert request.header("Auth-Pass") == ("" if case == "imap-external" else
                                           "0123456789abcdef0123456789abcdef")


def test_plain_login_without_auth_pass_uses_the_clients_password(running, auth_server, auth_policy):
    auth_server.policy = lambda request: Reply(_ok(auth_policy, request))
    transcript = run_script(running.address("imap"), login_script("imap", then=[ReadTagged(b"a1")]))
    assert transcript.replies()[-1].startswith(b"a1 OK ")


# -- the same outcomes through nginx and mailgate: transcripts and log lines -----------------

LOGOUT = {"imap": b"z LOGOUT\r\n", "pop3": b"QUIT\r\n", "smtp": b"QUIT\r\n"}

PAIRED = {
    **{name: answer for name, answer in SUCCESSES.items()},
    "failure": lambda p, r: Reply([("Auth-Status", "Go away"), ("Auth-Error-Code", "550 5.7.1")]),
    **{name: answer for name, (answer, _, _) in INTERNAL.items()
       if name not in ("slow", "half-answer", "wait-then-slow")},
}


def test_outcomes_match_nginx(pair, auth_server, auth_policy, dovecot, smtp_backend):
    scripts = []
    for case, answer in PAIRED.items():
        def setup(answer=answer):
            auth_server.policy = lambda request: answer(auth_policy, request)
        for protocol in PROTOCOLS:
            then = [ReadLine(), LOGOUT[protocol], ReadEOF()] if case in SUCCESSES else None
            scripts.append(Script(f"{case}-{protocol}", protocol,
                                  login_script(protocol, then=then), setup=setup))
    for protocol in PROTOCOLS:
        scripts.append(Script("down-" + protocol, protocol + "_dead", login_script(protocol)))
    nginx, mailgate = pair
    compare(nginx.start(MAIL), mailgate.start(MAIL), MAIL, scripts)
