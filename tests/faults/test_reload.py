"""Reloads under load: 10 ``kill -HUP`` of the master while 20 clients log in and out in
a loop, over plain IMAP and implicit TLS, with two workers.  Not one login may fail and
not one session may be cut: a reload hands new connections to the new workers, and the
old ones finish what they accepted (nginx's ``ngx_signal_worker_processes`` with QUIT,
``ngx_close_listening_sockets`` in the old worker)."""

from __future__ import annotations

import imaplib
import signal
import ssl
import threading
import time
from dataclasses import dataclass, field

from tests.e2e.gates import worker_pids
from tests.faults.helpers import start
from tests.support.clients import open_imap
from tests.support.configs import TLS
from tests.support.procs import wait_until
from tests.support.users import ALICE

MAIL = """
    server_name mx.test;
    auth_http $auth_http;
""" + TLS + """
    imap_capabilities IMAP4rev1 X-GENERATION-%d;
    server { listen 127.0.0.1:${port_imap}; protocol imap; }
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
"""
"""Every reload writes the next generation into the capabilities, so that the last one
can be seen to be served."""

CLIENTS = 20
RELOADS = 10
RELOAD_INTERVAL = 1.2  # seconds between two HUPs: new workers start, old ones drain
LOAD_LIMIT = 40.0  # the whole loop of logins, whatever happens (seconds)


@dataclass
class Tally:
    """What the clients saw; ``failed``: no login (connect, greeting, LOGIN);
    ``dropped``: a session cut after its login."""

    logins: int = 0
    failed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, what: str = "") -> None:
        with self.lock:
            if kind == "ok":
                self.logins += 1
            else:
                getattr(self, kind).append(what)


def _client(address, security: str, context: ssl.SSLContext, stop: threading.Event,
            deadline: float, tally: Tally) -> None:
    """Log in, look at the mailbox, log out; again until told to stop (or the deadline)."""
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            client = open_imap(*address, security=security, context=context, timeout=10)
            client.login(ALICE.login, ALICE.password)
        except (OSError, imaplib.IMAP4.error) as exc:
            tally.add("failed", f"{security}: {exc!r}")
            continue
        try:
            client.select("INBOX", readonly=True)
            client.noop()
            client.logout()
        except (OSError, imaplib.IMAP4.error) as exc:
            tally.add("dropped", f"{security}: {exc!r}")
            continue
        tally.add("ok")


def test_ten_reloads_under_twenty_looping_clients(binary, dovecot, auth_server,
                                                 tls_client_context):
    binary.worker_processes = 2
    start(binary, MAIL % 0)
    tally = Tally()
    stop = threading.Event()
    deadline = time.monotonic() + LOAD_LIMIT
    addresses = {"plain": binary.address("imap"), "ssl": binary.address("imaps")}
    threads = [
        threading.Thread(target=_client, daemon=True, args=(
            addresses[security], security, tls_client_context, stop, deadline, tally))
        for security in ("plain", "ssl") for _ in range(CLIENTS // 2)]
    for thread in threads:
        thread.start()
    try:
        assert wait_until(lambda: tally.logins >= CLIENTS, 10), "the clients do not log in"
        for generation in range(1, RELOADS + 1):
            binary.conf_path.write_text(binary.render(MAIL % generation))
            binary.send_signal(signal.SIGHUP)
            time.sleep(RELOAD_INTERVAL)
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
    print(f"{binary.name}: {tally.logins} logins, {len(tally.failed)} failed, "
          f"{len(tally.dropped)} dropped over {RELOADS} reloads")
    assert tally.failed == [] and tally.dropped == []
    assert tally.logins >= 2 * CLIENTS
    # every reload was taken, the old workers are gone, the last configuration serves
    assert binary.error_log().count("reconfiguring\n") == 2 * RELOADS  # signal line + act
    assert wait_until(lambda: len(worker_pids(binary)) == 2, 10), worker_pids(binary)
    with open_imap(*addresses["plain"]) as client:
        assert b"X-GENERATION-%d" % RELOADS in client.capability()[1][0]

