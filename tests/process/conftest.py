"""Real ``python -m mailgate`` processes in temporary prefixes, on loopback ports.

Every process a test starts is killed at teardown, found by its session: the
master of ``daemon off`` leads the session it is started in, a daemon leads
the one it makes (its PID is in the pid file).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mailgate
import pytest

ENGINE = str(Path(mailgate.__file__).resolve().parent.parent)
WAIT = 10.0  # the bound of every wait for a process to do something


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = WAIT, what: str = "condition"):
    """Poll ``predicate`` until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.02)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from "state" on


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def session_members(sids: set[int]) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[3]) in sids:
                found.append(int(entry))
    return found


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


@dataclass
class Finished:
    """A command that ran to its end."""

    pid: int
    returncode: int
    stdout: str
    stderr: str


class Mailgate:
    """One mailgate instance: its prefix, configuration, processes and logs."""

    def __init__(self, root: Path):
        self.root = root
        (root / "logs").mkdir()
        self.conf = root / "mailgate.conf"
        self.pid_path = root / "logs" / "mailgate.pid"
        self.error_log = root / "logs" / "error.log"
        self.launcher: subprocess.Popen | None = None
        self.sids: set[int] = set()

    def write(self, mail: str, *, daemon: bool = False, workers: int = 2, main: str = "",
              events: str = "") -> None:
        """The configuration: main settings, then ``mail { MAIL }``."""
        self.conf.write_text(
            "daemon %s;\nworker_processes %d;\nerror_log logs/error.log info;\n%s\n"
            "events { %s }\nmail {\n%s\n}\n" % ("on" if daemon else "off", workers, main, events, mail)
        )

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
        self.sids.add(proc.pid)
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
            self.launcher = subprocess.Popen(self.command(), env=self.env(), stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err, start_new_session=True)
        self.sids.add(self.launcher.pid)

    def start_daemon(self) -> int:
        proc = self.run()
        assert proc.returncode == 0, proc.stderr
        return self.wait_started()

    def wait_started(self) -> int:
        pid = wait_for(self.read_pid, what="the pid file")
        self.sids.add(pid)
        wait_for(lambda: len(self.workers()) == self.worker_count(), what="the workers")
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
        """Wait until ``pattern`` (a regex) matches ``count`` lines of the error log."""
        regex = re.compile(pattern, re.MULTILINE)
        return wait_for(lambda: len(regex.findall(self.log())) >= count and self.log(),
                        timeout, "log %r x%d" % (pattern, count))

    def wait_exit(self, pid: int, timeout: float = WAIT) -> None:
        wait_for(lambda: not alive(pid), timeout, "process %d to exit" % pid)
        if self.launcher is not None and self.launcher.pid == pid:
            self.launcher.wait(timeout)

    def kill_all(self) -> None:
        pid = self.read_pid()
        if pid:
            self.sids.add(pid)
        for member in session_members(self.sids):
            try:
                os.kill(member, signal.SIGKILL)
            except OSError:
                pass
        if self.launcher is not None:
            try:
                self.launcher.wait(WAIT)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def mailgate_instance(tmp_path):
    instance = Mailgate(tmp_path)
    try:
        yield instance
    finally:
        instance.kill_all()


class Backends:
    """An auth_http server that sends every login to a small IMAP backend, both in a thread.

    The backend answers nginx's LOGIN with literals, then NOOP (naming itself)
    and LOGOUT; enough to hold a proxied session open across a reload.
    """

    def __init__(self):
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(WAIT)

    def _run(self) -> None:
        import asyncio

        asyncio.set_event_loop(self.loop)

        async def start():
            self.imap = await asyncio.start_server(self._imap, "127.0.0.1", 0)
            self.auth = await asyncio.start_server(self._auth, "127.0.0.1", 0)

        self.loop.run_until_complete(start())
        self.imap_port = self.imap.sockets[0].getsockname()[1]
        self.auth_port = self.auth.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _auth(self, reader, writer) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\n"
                     b"Auth-Port: %d\r\n\r\n" % self.imap_port)
        await writer.drain()
        writer.close()

    async def _imap(self, reader, writer) -> None:
        writer.write(b"* OK backend ready\r\n")
        tag = None
        while line := await reader.readline():
            words = line.split()
            if tag is None and len(words) >= 2 and words[1].upper() == b"LOGIN":
                tag = words[0]
            if line.rstrip().endswith(b"}"):
                writer.write(b"+ go ahead\r\n")
            elif len(words) >= 2 and words[1].upper() == b"LOGOUT":
                writer.write(b"* BYE backend\r\n" + words[0] + b" OK LOGOUT completed\r\n")
                await writer.drain()
                break
            elif len(words) >= 2:
                writer.write(words[0] + b" OK " + words[1] + b" completed by backend\r\n")
            else:  # the password line that completes the LOGIN
                writer.write(tag + b" OK LOGIN completed\r\n")
            await writer.drain()
        writer.close()

    def close(self) -> None:
        def stop():
            self.imap.close()
            self.auth.close()
            self.loop.stop()

        self.loop.call_soon_threadsafe(stop)
        self.thread.join(WAIT)


@pytest.fixture
def backends():
    servers = Backends()
    try:
        yield servers
    finally:
        servers.close()
