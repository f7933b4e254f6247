"""Start and stop server processes so that nothing outlives the test that started them.

Every server is started in a session of its own (``start_new_session``), so its whole
process tree shares one process group: stopping sends the polite signal to the
leader, waits, then SIGKILLs whatever is left in the group.  An ``atexit`` hook stops
anything still registered when the interpreter exits (e.g. after Ctrl-C).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "ServerProcess",
    "StartupError",
    "group_alive",
    "is_listening",
    "kill_group",
    "pid_alive",
    "wait_for_listen",
    "wait_until",
]


class StartupError(RuntimeError):
    """A server did not come up; the message carries its own diagnostics."""


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The state field follows the parenthesised command name.
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process is left in process group ``pgid``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def kill_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGKILL every process of group ``pgid`` and wait until they are gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_until(lambda: not group_alive(pgid), timeout)


def _proc_net_address(host: str) -> str:
    """``host`` as /proc/net/tcp{,6} spells it (native-endian 32-bit words in hex)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    packed = socket.inet_pton(family, host)
    words = [packed[i : i + 4] for i in range(0, len(packed), 4)]
    if sys.byteorder == "little":
        words = [w[::-1] for w in words]
    return b"".join(words).hex().upper()


def is_listening(host: str, port: int) -> bool:
    """True when a socket listens on ``host:port`` (or the wildcard) in our namespace.

    Read from /proc/net instead of probing with connect(): a probe would be logged
    by the server as a client connection and shift nginx's connection numbers.
    """
    table = "/proc/net/tcp6" if ":" in host else "/proc/net/tcp"
    wanted = {_proc_net_address(host), _proc_net_address("::" if ":" in host else "0.0.0.0")}
    try:
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                address, _, port_hex = fields[1].partition(":")
                if fields[3] == "0A" and int(port_hex, 16) == port and address in wanted:
                    return True
    except OSError:
        pass
    return False


def wait_for_listen(
    addresses: Sequence[tuple[str, int]],
    timeout: float = 10.0,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Wait until something listens on every ``(host, port)``.

    ``alive`` is polled too, so a server that died on startup is reported at once
    instead of after the timeout.  Raises :class:`StartupError`.
    """
    deadline = time.monotonic() + timeout
    pending = list(addresses)
    while pending:
        if alive is not None and not alive():
            raise StartupError(f"server exited before listening on {pending}")
        if is_listening(*pending[0]):
            pending.pop(0)
            continue
        if time.monotonic() >= deadline:
            raise StartupError(f"nothing listens on {pending} after {timeout:.1f}s")
        time.sleep(0.02)


_RUNNING: weakref.WeakSet[ServerProcess] = weakref.WeakSet()
_SETPRIV = shutil.which("setpriv")


class ServerProcess:
    """A child server process with its own process group and captured output.

    Example::

        proc = ServerProcess(["dovecot", "-F", "-c", conf], log_dir=tmp_path)
        proc.start()
        wait_for_listen([("127.0.0.1", port)], alive=proc.alive)
        ...
        proc.stop()
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_dir: Path,
        name: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.name = name or Path(self.argv[0]).name
        self.stdout_path = Path(log_dir) / f"{self.name}.stdout"
        self.stderr_path = Path(log_dir) / f"{self.name}.stderr"
        self.env = env
        self.cwd = cwd
        self.stop_signal = stop_signal
        self.popen: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        """Pid of the leader (raises if never started)."""
        if self.popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.popen.pid

    def start(self) -> None:
        """Spawn the process in a new session.

        Under ``setpriv --pdeathsig TERM`` when available, so the server is told to
        stop even if the test process is SIGKILLed and no teardown runs.
        """
        argv = self.argv
        if _SETPRIV:
            argv = [_SETPRIV, "--pdeathsig", "TERM", "--", *argv]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        _RUNNING.add(self)

    def alive(self) -> bool:
        """True while the leader has not exited."""
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        """What the process wrote to stdout and stderr so far."""
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def stop(self, timeout: float = 10.0, sig: int | None = None) -> int | None:
        """Signal the leader, wait up to ``timeout``, then kill the whole group.

        Returns the leader's exit code (negative for a signal), or None if it was
        never started.  Safe to call more than once.
        """
        if self.popen is None:
            return None
        pgid = self.popen.pid  # leader of its own session: pgid == pid
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(sig if sig is not None else self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if group_alive(pgid):
            kill_group(pgid)
        if self.popen.poll() is None:
            self.popen.kill()
        self.returncode = self.popen.wait()
        _RUNNING.discard(self)
        return self.returncode


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_RUNNING):
        proc.stop(timeout=2.0)
