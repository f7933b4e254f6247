"""kill -9 of a worker in the middle of sessions (two workers): the killed worker's
clients see their connection closed, the other worker's sessions go on, the master
logs nginx's ``[alert] worker process N exited on signal 9`` and starts a new worker
on the same loop, and new logins work."""

from __future__ import annotations

import os
import re
import signal
import socket

from tests.e2e.gates import worker_pids
from tests.faults.helpers import assert_serves, start
from tests.support.configs import one_server_each
from tests.support.procinfo import event_loop
from tests.support.procs import wait_until
from tests.support.users import ALICE

MAIL = one_server_each()
MIN_SESSIONS, MAX_SESSIONS = 10, 40
"""Sessions opened, half of them logged in: more until both workers hold some (the
kernel picks the worker that accepts)."""


class Session:
    """A blocking IMAP client (with its own line reader) and the worker serving it."""

    def __init__(self, address, login: bool):
        self.sock = socket.create_connection(address, timeout=10)
        self.buffer = b""
        self.logged_in = login
        assert self.line().startswith(b"* OK")
        if login:
            assert self.command(b"a1 LOGIN %s %s" % (ALICE.login_bytes, ALICE.password_bytes))
            assert self.command(b"a2 EXAMINE INBOX")
        self.worker: int | None = None

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return b""
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def command(self, line: bytes) -> bytes | None:
        """The tagged OK answer's lines, or None if the connection ends first."""
        self.sock.sendall(line + b"\r\n")
        tag, got = line.split()[0] + b" ", b""
        try:
            while (reply := self.line()):
                got += reply
                if reply.startswith(tag):
                    return got if reply.startswith(tag + b"OK") else None
        except ConnectionResetError:
            pass
        return None

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]


def _serving_worker(log: str, port: int) -> int | None:
    """The worker that logged the connection from ``port``."""
    match = re.search(rf"\] (\d+)#\d+: \*\d+ client 127\.0\.0\.1:{port} connected", log)
    return int(match.group(1)) if match else None


def test_worker_killed_during_sessions(binary, dovecot, auth_server, smtp_backend):
    binary.worker_processes = 2
    binary.tolerate_problems = True  # the master's [alert] is expected: checked below
    start(binary, MAIL)
    sessions: list[Session] = []
    while len(sessions) < MIN_SESSIONS or (
            len(sessions) < MAX_SESSIONS and len({s.worker for s in sessions}) < 2):
        for login in (True, False):
            session = Session(binary.address("imap"), login)
            assert wait_until(lambda s=session: _serving_worker(binary.error_log(), s.port), 3)
            session.worker = _serving_worker(binary.error_log(), session.port)
            sessions.append(session)
    victim = sessions[0].worker
    (survivor,) = set(worker_pids(binary)) - {victim}
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: victim not in worker_pids(binary)
                      and len(worker_pids(binary)) == 2, 10), worker_pids(binary)
    (new,) = set(worker_pids(binary)) - {survivor}
    assert event_loop(new) == event_loop(survivor)

    message = dovecot.delivered(ALICE.login)[0].data
    for n, session in enumerate(sessions):
        if session.logged_in:
            answer = session.command(b"b%d FETCH 1 BODY.PEEK[]" % n)
        else:
            answer = session.command(b"b%d CAPABILITY" % n)  # answered by the proxy itself
        session.sock.close()
        if session.worker == victim:
            assert answer is None, "a session of the killed worker lives on"
        else:
            assert answer is not None, "a session of the other worker ended"
            assert not session.logged_in or message in answer
    alert = f"[alert] {binary.master_pid}#{binary.master_pid}: worker process {victim} " \
            "exited on signal 9"
    problems = binary.problems()
    assert len(problems) == 1 and problems[0].endswith(alert), problems
    assert_serves(binary, worker_pids(binary))
