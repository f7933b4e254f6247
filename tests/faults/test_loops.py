"""``MAILGATE_LOOP`` chooses the event loop of the binary's workers: the fault tests run
the binary on both, and skip a loop the binary does not run when asked (this test
fails for it instead)."""

from __future__ import annotations


from tests.e2e.gates import worker_pids
from tests.support.procinfo import event_loop
from tests.support.procs import wait_until

MAIL = """
    auth_http 127.0.0.1:1/auth;
    server { listen 127.0.0.1:${port_imap}; protocol imap; }
"""


def test_mailgate_loop_chooses_the_workers_event_loop(binary):
    binary.worker_processes = 2
    binary.start(MAIL)
    assert wait_until(lambda: len(worker_pids(binary)) == 2, 10)
    assert [event_loop(pid) for pid in worker_pids(binary)] == [binary.implementation.loop] * 2
