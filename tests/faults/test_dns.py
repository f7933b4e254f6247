"""DNS fails under the SMTP client name lookup (``resolver``): the DNS server answers
SERVFAIL, says nothing, or is not there at all.  As nginx, the greeting comes once the
lookup has failed (after ``resolver_timeout`` at worst), the auth server is told
``Client-Host: [TEMPUNAVAIL]``, the failure is logged, and the login goes on."""

from __future__ import annotations

import dns.rcode
import pytest

from tests.e2e.conformance import Script, compare
from tests.e2e.gates import wait_for_log, worker_pids
from tests.e2e.scripts import context, login_script
from tests.faults.helpers import DNSThread, assert_serves, start
from tests.support.configs import one_server_each
from tests.support.dns_server import reverse_name
from tests.support.transcript import ReadLine, run_script

MAIL = one_server_each("resolver_timeout 1s;") + """
    server { listen 127.0.0.1:${port_smtp_dns}; protocol smtp; resolver $dns; }
    server { listen 127.0.0.1:${port_smtp_no_dns}; protocol smtp;
             resolver 127.0.0.1:${port_no_dns}; }
"""
"""Healthy servers; SMTP asking the scripted DNS server; SMTP asking a port where no
DNS server listens (the queries meet ICMP port unreachable)."""

PTR = reverse_name("127.0.0.1")
FAULTS = {
    # name: (the listener, the PTR rule of the scripted server, the error in the log)
    "servfail": ("smtp_dns", {"rcode": dns.rcode.SERVFAIL}, "2: Server failure"),
    "silent": ("smtp_dns", {"drop": True}, "110: Operation timed out"),
    "no-server": ("smtp_no_dns", None, "110: Operation timed out"),
}
SCRIPT = login_script("smtp", then=[ReadLine()])


@pytest.fixture
def dns_server():
    """The scripted DNS server, on a thread (the proxies under test are other processes)."""
    server = DNSThread()
    yield server
    server.close()


def _script(dns_server: DNSThread, fault: str) -> None:
    rule = FAULTS[fault][1]
    if rule is not None:
        dns_server.server.rule(PTR, "PTR", **rule)


@pytest.mark.parametrize("fault", ["servfail", "no-server"])
def test_dns_fault(sut, auth_server, dns_server, smtp_backend, fault):
    name, _, error = FAULTS[fault]
    _script(dns_server, fault)
    sut.values["dns"] = dns_server.address
    workers = worker_pids(start(sut, MAIL))
    transcript = run_script(sut.address(name), SCRIPT)
    assert transcript.replies() == [
        b"220 mx.test ESMTP ready\r\n", b"250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n",
        b"235 2.0.0 OK\r\n"], transcript
    assert auth_server.requests[-1].header("Client-Host") == "[TEMPUNAVAIL]"
    wait_for_log(sut, f"127.0.0.1 could not be resolved ({error}) while in resolving client "
                 "address" + context(sut, name, login=None), "error")
    assert_serves(sut, workers)


def test_dns_faults_as_nginx(proxy_pair, auth_server, dns_server, smtp_backend):
    """Transcripts, the Client-Host header and log lines as nginx's, for every fault."""
    scripts = [Script(fault, FAULTS[fault][0], SCRIPT,
                      setup=lambda fault=fault: _script(dns_server, fault)) for fault in FAULTS]
    for gate in proxy_pair:
        gate.values["dns"] = dns_server.address
    nginx, mailgate = proxy_pair
    compare(nginx.start(MAIL), mailgate.start(MAIL), MAIL, scripts)
    assert [r.header("Client-Host") for r in auth_server.requests] == ["[TEMPUNAVAIL]"] * 6
