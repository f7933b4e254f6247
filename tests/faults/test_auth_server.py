"""The auth_http server fails: refused, slow, garbage, a 1 MB answer, dying (FIN) or
reset in the middle of its answer.  Whatever it does, the client gets nginx's internal
error and is closed, the line nginx logs is logged, and the worker goes on serving."""

from __future__ import annotations

import random

import pytest

from tests.e2e.conformance import Script, compare
from tests.e2e.gates import log_messages, wait_for_log, worker_pids
from tests.e2e.scripts import INTERNAL_ERROR, PROTOCOLS, context, each_protocol, login_script
from tests.faults.helpers import assert_serves, auth_reset_midway, start
from tests.support.auth_http import NoReply, RawReply, Reply
from tests.support.configs import one_server_each
from tests.support.transcript import run_script

MAIL = one_server_each("auth_http_timeout 1s;") + """
    server { listen 127.0.0.1:${port_imap_fault}; protocol imap; auth_http $fault_auth; }
    server { listen 127.0.0.1:${port_pop3_fault}; protocol pop3; auth_http $fault_auth; }
    server { listen 127.0.0.1:${port_smtp_fault}; protocol smtp; auth_http $fault_auth; }
"""
"""Healthy servers, and one per protocol asking the failing auth server."""

GARBAGE = random.Random(11).randbytes(4096)
ONE_MEGABYTE = Reply([("X-Padding", "x" * 1014)] * 1024 + [
    ("Auth-Status", "OK"), ("Auth-Server", "127.0.0.1"), ("Auth-Port", "143")])
"""1 MiB of headers before a valid answer: nginx reads 1024 bytes and stalls until
auth_http_timeout; mailgate refuses an answer past 64 KiB at once
(docs/differences.md#auth_http)."""

AUTH = "auth http server 127.0.0.1:%d"

FAULTS = {
    # name: (the auth server's answer, or how it is reached; the [error] line or None)
    "refused": ("dead port", "recv() failed (111: Connection refused)"),
    "slow": (NoReply(hold=5), AUTH + " timed out (110: Connection timed out)"),
    "garbage": (RawReply(GARBAGE), AUTH + " sent invalid header in response"),
    "1-megabyte": (ONE_MEGABYTE, AUTH + " sent invalid response"),
    # closed with half an answer: nothing logged, as nginx logs nothing when it sees the
    # close (e2e's close-early; this one it misses, and times out)
    "dies-midway": (RawReply(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Ser"), None),
    "reset-midway": ("reset", "recv() failed (104: Connection reset by peer)"),
}


def _fault_auth(fault: str, auth_server, tcp_backend, port_allocator) -> tuple[str, int]:
    """The ``auth_http`` URL of the failing server and its port."""
    answer = FAULTS[fault][0]
    if answer == "dead port":
        port = port_allocator.port()
    elif answer == "reset":
        port = tcp_backend(auth_reset_midway).port
    else:
        auth_server.policy = lambda request, default=auth_server.policy: (
            answer if request.login == "victim" else default(request))
        port = auth_server.port
    return f"127.0.0.1:{port}/auth", port


@pytest.mark.parametrize("fault", FAULTS)
def test_auth_server_fault(sut, auth_server, tcp_backend, port_allocator, fault):
    sut.values["fault_auth"], port = _fault_auth(fault, auth_server, tcp_backend, port_allocator)
    workers = worker_pids(start(sut, MAIL))
    message = FAULTS[fault][1]

    def run(protocol: str) -> None:
        name = protocol + "_fault"
        transcript = run_script(sut.address(name), login_script(protocol, login=b"victim"))
        assert transcript.replies()[-1] == INTERNAL_ERROR[protocol], transcript
        assert transcript.closed_by_server
        if message is not None:
            wait_for_log(sut, (message % port if "%d" in message else message)
                         + " while in http auth state" + context(sut, name, login="victim"),
                         "error")

    each_protocol(run)
    if message is None:
        assert not [m for m in log_messages(sut, "error") if "auth http" in m]
    assert_serves(sut, workers)
    if fault == "refused":
        port_allocator.release(port)


def test_garbage_from_the_auth_server_as_nginx(proxy_pair, auth_server):
    """The same client transcripts and log lines as nginx.  The other faults give the
    client nginx's internal error too (above); there nginx waits for auth_http_timeout
    where mailgate answers at once: it misses the end of an answer that arrives with its
    last bytes (edge-triggered epoll), and stalls past 1024 bytes."""
    auth_server.policy = lambda request: RawReply(GARBAGE)
    for gate in proxy_pair:
        gate.values["fault_auth"] = auth_server.url
    scripts = [Script(f"garbage-{protocol}", protocol, login_script(protocol))
               for protocol in PROTOCOLS]
    nginx, mailgate = proxy_pair
    compare(nginx.start(MAIL), mailgate.start(MAIL), MAIL, scripts)
