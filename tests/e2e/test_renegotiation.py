"""A TLS 1.2 client asking to renegotiate (``openssl s_client``'s ``R`` command) is refused
with the no_renegotiation alert and the connection closes at once, logged at info
(nginx's ``ngx_ssl_handle_recv``: "SSL renegotiation disabled"), before the login and
while relaying.  Issue 11, defect 4: the alert stayed unsent and the client waited for
the login timeout, or forever once relaying."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.support.configs import STANDARD
from tests.support.users import ALICE

CLIENT_WAIT = 10  # s_client must be done well before this; the login timeout is 60 s


def _s_client(address, starttls: bool, before: bytes) -> tuple[int | None, bytes, float]:
    """Run s_client (TLS 1.2), send ``before``, then ``R`` alone (s_client acts on a line
    read by itself); exit status (None if still running), output, seconds after ``R``."""
    host, port = address
    argv = ["openssl", "s_client", "-tls1_2", "-crlf", "-connect", "%s:%d" % (host, port)]
    if starttls:
        argv += ["-starttls", "imap"]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as proc:
        try:
            time.sleep(0.5)
            if before:
                proc.stdin.write(before)
                proc.stdin.flush()
                time.sleep(1)
            proc.stdin.write(b"R\n")
            proc.stdin.flush()
            start = time.monotonic()
            try:
                proc.wait(CLIENT_WAIT)  # stdin stays open: only the server can end it
            except subprocess.TimeoutExpired:
                pass
            took = time.monotonic() - start
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdin.close()
            output = proc.stdout.read()
    return proc.returncode if took < CLIENT_WAIT else None, output, took


@pytest.mark.requires("openssl")
@pytest.mark.parametrize("phase", ["pre-auth", "relay"])
@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_renegotiation_is_refused_at_once(gate, dovecot, phase, security):
    gate.start(STANDARD)
    before = b""
    if phase == "relay":
        before = b"a1 LOGIN %s %s\n" % (ALICE.login.encode(), ALICE.password.encode())
    address = gate.address("imaps" if security == "ssl" else "imap")
    code, output, took = _s_client(address, security == "starttls", before)
    assert b"RENEGOTIATING" in output
    if phase == "relay":
        assert b"a1 OK" in output
    assert b"no renegotiation" in output, output.decode(errors="replace")
    assert took < CLIENT_WAIT / 2
    assert code != 0
    if gate.name != "nginx":
        # nginx 1.22 closes without the alert (its socket BIO sends nothing) and logs at notice
        assert any("SSL renegotiation disabled" in line for line in gate.log_lines("info"))
