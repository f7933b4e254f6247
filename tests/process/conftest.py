"""Real ``python -m mailgate`` processes in temporary prefixes, on loopback ports.

Every process a test starts is killed at teardown, by process group: the master
of ``daemon off`` leads the group it is started in, a daemon leads the one it
makes (its PID is in the pid file); the workers are in their master's group.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mailgate
import pytest

from tests.demo.helpers import ServerThread
from tests.support.auth_http import AuthHttpServer, DefaultPolicy
from tests.support.procs import kill_group, pid_alive, wait_until

ENGINE = str(Path(mailgate.__file__).resolve().parent.parent)
WAIT = 10.0  # the bound of every wait for a process to do something
GREETING = b"* OK IMAP4 ready\r\n"


def wait_for(predicate, what: str, timeout: float = WAIT) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout``."""
    assert wait_until(predicate, timeout), "timed out waiting for %s" % what


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from "state" on


def children(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def recv_line(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """One CRLF line (b"" when the peer closes first)."""
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\r\n"):
        try:
            chunk = sock.recv(1)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    return data


def greeting(port: int, timeout: float = 5.0) -> bytes:
    """Connect and read the greeting line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        return recv_line(sock, timeout)


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def imap_session(port: int) -> socket.socket:
    """A connected IMAP client past the greeting."""
    sock = connect(port)
    assert recv_line(sock) == GREETING
    return sock


@dataclass
class Finished:
    """A command that ran to its end."""

    pid: int
    returncode: int
    stdout: str
    stderr: str


class Mailgate:
    """One mailgate instance: its prefix, configuration, processes and logs."""

    def __init__(self, root: Path, ports):
        self.root = root
        self.ports = ports
        (root / "logs").mkdir()
        self.conf = root / "mailgate.conf"
        self.pid_path = root / "logs" / "mailgate.pid"
        self.error_log = root / "logs" / "error.log"
        self.launcher: subprocess.Popen | None = None
        self.groups: set[int] = set()  # process groups to kill at the end

    def port(self) -> int:
        """A free loopback port for a ``listen``."""
        return self.ports.port()

    def write(self, mail: str, *, daemon: bool = False, workers: int = 2, main: str = "",
              events: str = "") -> None:
        """The configuration: main settings, then ``mail { MAIL }``."""
        # as root, workers would run as nobody, who cannot reopen logs in a 0700 tmp dir
        user = "" if "user " in main else "user root;\n"
        self.conf.write_text(
            "%sdaemon %s;\nworker_processes %d;\nerror_log logs/error.log info;\n%s\n"
            "events { %s }\nmail {\n%s\n}\n"
            % (user, "on" if daemon else "off", workers, main, events, mail)
        )

    def write_imap(self, port: int | None = None, *, capabilities: str = "IMAP4rev1",
                   auth_http: str = "127.0.0.1:1/auth", extra: str = "", **settings) -> int:
        """One IMAP server on ``port`` (a new one by default); ``settings`` as ``write``'s."""
        port = self.port() if port is None else port
        self.write("auth_http %s;\nimap_capabilities %s;\n%s\n"
                   "server { listen 127.0.0.1:%d; protocol imap; }"
                   % (auth_http, capabilities, extra, port), **settings)
        return port

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mailgate", "-p", str(self.root), "-c", str(self.conf), *args]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = ENGINE + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def run(self, *args: str, timeout: float = WAIT) -> Finished:
        """Run a command that ends (``-s``, a daemon start, a failing start)."""
        proc = subprocess.Popen(self.command(*args), env=self.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        self.groups.add(proc.pid)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        return Finished(proc.pid, proc.returncode, stdout, stderr)

    def start(self) -> int:
        """Start with ``daemon off``; the master PID once the pid file and the workers are there."""
        self.start_background()
        return self.wait_started()

    def start_background(self) -> None:
        """Start with ``daemon off`` and return at once."""
        with open(self.root / "stdout", "wb") as out, open(self.root / "stderr", "wb") as err:
            self.launcher = subprocess.Popen(self.command(), env=self.env(),
                                             stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                             start_new_session=True)
        self.groups.add(self.launcher.pid)

    def start_daemon(self) -> int:
        proc = self.run()
        assert proc.returncode == 0, proc.stderr
        return self.wait_started()

    def wait_started(self) -> int:
        wait_for(lambda: self.read_pid() is not None, "the pid file")
        pid = self.master
        self.groups.add(pid)
        wait_for(lambda: len(self.workers()) == self.worker_count(), "the workers")
        return pid

    def worker_count(self) -> int:
        return int(re.search(r"worker_processes (\d+);", self.conf.read_text()).group(1))

    def read_pid(self) -> int | None:
        try:
            text = self.pid_path.read_text()
        except OSError:
            return None
        return int(text) if text.endswith("\n") and text.strip().isdigit() else None

    @property
    def master(self) -> int:
        pid = self.read_pid()
        assert pid is not None, "no pid file"
        return pid

    def workers(self) -> list[int]:
        pid = self.read_pid()
        return children(pid) if pid else []

    def signal(self, signo: int) -> None:
        os.kill(self.master, signo)

    def log(self) -> str:
        try:
            return self.error_log.read_text()
        except OSError:
            return ""

    def wait_log(self, pattern: str, count: int = 1, timeout: float = WAIT) -> str:
        """Wait until ``pattern`` (a regex) matches ``count`` lines of the error log; the log."""
        regex = re.compile(pattern, re.MULTILINE)
        wait_for(lambda: len(regex.findall(self.log())) >= count,
                 "log %r x%d" % (pattern, count), timeout)
        return self.log()

    def wait_exit(self, pid: int, timeout: float = WAIT) -> None:
        wait_for(lambda: not pid_alive(pid), "process %d to exit" % pid, timeout)

    def kill_all(self) -> None:
        pid = self.read_pid()
        if pid:
            self.groups.add(pid)
        for group in self.groups:
            kill_group(group)
        if self.launcher is not None:
            self.launcher.wait(WAIT)


@pytest.fixture
def mailgate_instance(tmp_path, port_allocator):
    instance = Mailgate(tmp_path, port_allocator)
    try:
        yield instance
    finally:
        instance.kill_all()


class Backend:
    """The demo mail server (in a thread) and an auth_http server that sends logins to it."""

    USER, PASSWORD = "alice", "alice secret"
    MESSAGE = b"Subject: kept\r\n\r\nacross the reload\r\n"

    def __init__(self, ports):
        from mailgate.demo import Mailstore

        store = Mailstore()
        store.add_user(self.USER, self.PASSWORD)
        store.deliver(self.USER, self.MESSAGE)
        self.mail = ServerThread(store)
        self.auth = AuthHttpServer(ports, DefaultPolicy(
            {self.USER: self.PASSWORD}, {"imap": ("127.0.0.1", self.mail.ports["imap"])}))
        self.auth.start()

    def close(self) -> None:
        self.auth.stop()
        self.mail.stop()


@pytest.fixture
def backend(port_allocator):
    servers = Backend(port_allocator)
    try:
        yield servers
    finally:
        servers.close()
