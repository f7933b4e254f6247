"""The backend fails: it refuses the connection, closes it in the middle of the proxy's
login, or resets it in the middle of a 10 MB FETCH.  The client gets what nginx gives
it, the worker goes on serving, and the failure is in the log."""

from __future__ import annotations

import socket

import pytest

from tests.e2e.conformance import Script, compare
from tests.e2e.gates import log_messages, wait_for_log, worker_pids
from tests.e2e.scripts import INTERNAL_ERROR, PROTOCOLS, context, each_protocol, login_script, ok
from tests.faults.helpers import ResetRelay, assert_serves, close_after, reset, start
from tests.support.configs import one_server_each
from tests.support.transcript import ReadEOF, ReadLine, ReadTagged, run_script
from tests.support.users import BULK

MAIL = one_server_each("timeout 5s;")


def _send_victims_to(auth_server, backends: dict[str, tuple[str, int]]) -> None:
    """The user "victim" goes to the failing backend of its protocol, everyone else
    where the default policy sends them."""
    default = auth_server.policy
    auth_server.policy = lambda request: (
        ok(backends[request.protocol], Auth_Pass="x") if request.login == "victim"
        else default(request))


def test_backend_refuses(sut, auth_server, port_allocator):
    dead = port_allocator.port()
    _send_victims_to(auth_server, dict.fromkeys(PROTOCOLS, ("127.0.0.1", dead)))
    workers = worker_pids(start(sut, MAIL))

    def run(protocol: str) -> None:
        transcript = run_script(sut.address(protocol), login_script(protocol, login=b"victim"))
        assert transcript.replies()[-1] == INTERNAL_ERROR[protocol] and transcript.closed_by_server
        wait_for_log(sut, "recv() failed (111: Connection refused) while reading response from "
                     "upstream" + context(sut, protocol, login="victim",
                                          upstream=f"127.0.0.1:{dead}"), "error")

    each_protocol(run)
    assert_serves(sut, workers)
    port_allocator.release(dead)


# -- closing during the login ------------------------------------------------------------------

CLOSING_AFTER = (1, 2)
"""How many of the proxy's login commands the backend reads before it closes."""
STEPS = {
    1: {"imap": "sending LOGIN command", "pop3": "sending user name", "smtp": "sending HELO/EHLO"},
    2: {"imap": "sending user name", "pop3": "sending password", "smtp": "sending XCLIENT"},
}
"""The login step the close interrupts (nginx's log actions of ngx_mail_proxy_module.c):
IMAP ``LOGIN {n}`` then the user name literal, POP3 ``USER`` then ``PASS``, SMTP
``EHLO`` then ``XCLIENT``."""


def _closing_backends(tcp_backend, commands: int) -> dict[str, tuple[str, int]]:
    return {protocol: ("127.0.0.1", tcp_backend(close_after(protocol, commands)).port)
            for protocol in PROTOCOLS}


@pytest.mark.parametrize("commands", CLOSING_AFTER, ids=lambda n: f"after-{n}")
def test_backend_closes_during_login(sut, auth_server, tcp_backend, commands):
    _send_victims_to(auth_server, _closing_backends(tcp_backend, commands))
    workers = worker_pids(start(sut, MAIL))

    def run(protocol: str) -> None:
        transcript = run_script(sut.address(protocol), login_script(protocol, login=b"victim"))
        assert transcript.replies()[-1] == INTERNAL_ERROR[protocol] and transcript.closed_by_server

    each_protocol(run)
    assert_serves(sut, workers)


@pytest.mark.parametrize("commands", CLOSING_AFTER, ids=lambda n: f"after-{n}")
def test_backend_closing_during_login_is_logged(sut, auth_server, tcp_backend, commands):
    """nginx fails such a login silently; mailgate logs the close at [error] with the
    login step (nginx's action names) and the backend."""
    backends = _closing_backends(tcp_backend, commands)
    _send_victims_to(auth_server, backends)
    start(sut, MAIL)

    def run(protocol: str) -> None:
        run_script(sut.address(protocol), login_script(protocol, login=b"victim"))
        wait_for_log(sut, f"upstream prematurely closed connection while {STEPS[commands][protocol]}"
                     " to upstream" + context(sut, protocol, login="victim",
                                              upstream="{}:{}".format(*backends[protocol])),
                     "error")

    each_protocol(run)


def test_backend_closing_during_login_as_nginx(proxy_pair, auth_server, tcp_backend):
    """What the client sees is nginx's (the log differs by defect 5's fix)."""
    def answer(backends: dict[str, tuple[str, int]]):
        def setup() -> None:
            auth_server.policy = lambda request: ok(backends[request.protocol], Auth_Pass="x")
        return setup

    scripts = [Script(f"{protocol}-after-{commands}", protocol, login_script(protocol),
                      setup=answer(_closing_backends(tcp_backend, commands)))
               for commands in CLOSING_AFTER for protocol in PROTOCOLS]
    nginx, mailgate = proxy_pair
    compare(nginx.start(MAIL), mailgate.start(MAIL), MAIL, scripts, log_lines=False)


# -- reset in the middle of a 10 MB FETCH -------------------------------------------------------

RESET_AFTER = 1024 * 1024
FETCH = [ReadLine(), b"a1 LOGIN %s %s\r\n" % (BULK.login_bytes, BULK.password_bytes),
         ReadTagged(b"a1"), b"a2 EXAMINE INBOX\r\n", ReadTagged(b"a2"),
         b"a3 FETCH 1 BODY.PEEK[]\r\n", ReadEOF(timeout=10)]


def test_backend_resets_during_a_large_fetch(sut, auth_server, tcp_backend, dovecot):
    start(sut, MAIL)
    workers = worker_pids(sut)
    relay = tcp_backend(ResetRelay((dovecot.host, dovecot.imap_port), RESET_AFTER))
    auth_server.policy = _bulk_to(relay.port, auth_server.policy)
    transcript = run_script(sut.address("imap"), FETCH)
    received = transcript.received
    literal = b"* 1 FETCH (BODY[] {%d}\r\n" % len(dovecot.delivered(BULK.login)[0].data)
    # the literal began, was cut, and the connection closed: no tagged answer
    assert literal in received and b"\r\na3 " not in received, transcript.events[-3:]
    assert transcript.closed_by_server
    wait_for_log(sut, "proxied session done", "info")
    assert_serves(sut, workers)


def test_backend_reset_while_proxying_is_logged(gate, auth_server, tcp_backend, dovecot):
    start(gate, MAIL)
    relay = tcp_backend(ResetRelay((dovecot.host, dovecot.imap_port), RESET_AFTER))
    auth_server.policy = _bulk_to(relay.port, auth_server.policy)
    run_script(gate.address("imap"), FETCH)
    wait_for_log(gate, "proxied session done", "info")  # nginx logs the reset before it
    assert ("recv() failed (104: Connection reset by peer) while proxying and reading from "
            "upstream" + context(gate, "imap", login=BULK.login,
                                 upstream=f"127.0.0.1:{relay.port}")) in log_messages(gate, "error")


def test_client_reset_while_proxying_is_logged(gate, auth_server, dovecot):
    """The other direction: nginx names the side it was reading from in its action."""
    start(gate, MAIL)
    client = socket.create_connection(gate.address("imap"), timeout=10)
    client.sendall(b"a1 LOGIN alice alice-secret\r\na2 EXAMINE INBOX\r\n")
    received = b""
    while b"\r\na2 OK" not in received:
        received += client.recv(65536)
    reset(client)
    wait_for_log(gate, "proxied session done", "info")  # nginx logs the reset before it
    assert ("recv() failed (104: Connection reset by peer) while proxying and reading from "
            "client" + context(gate, "imap", upstream="{}:{}".format(*auth_server.policy.backends[
                "imap"]))) in log_messages(gate, "info")


def _bulk_to(port: int, default):
    """An auth policy sending the bulk user (10 MB message) through the relay on ``port``."""
    return lambda request: (ok(("127.0.0.1", port)) if request.login == BULK.login
                            else default(request))
