"""Run a mail proxy — Debian's nginx (the reference) or mailgate — on a given config.

Both implementations take nginx's command line (``-p PREFIX -c FILE -e ERRLOG -g
DIRECTIVES``) and the very same configuration file; only what the implementation
itself needs goes into ``-g`` (nginx: ``load_module`` of the Debian mail module).  A
test writes the ``mail {}`` body once, with ``string.Template`` placeholders:

* ``${port_NAME}`` — a free loopback port allocated for NAME (``proxy.port("NAME")``);
  those used in a ``listen`` line are waited for at start;
* ``$auth_http`` and every value given as ``values`` (certificate paths etc.);
* ``$prefix`` — the proxy's prefix directory.

nginx's mail configuration has no ``$variables``; write ``$$`` for a literal ``$``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import string
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .components import NGINX, NGINX_MAIL_MODULE
from .ports import NamedPorts, PortAllocator
from .procs import ServerProcess, StartupError, kill_group, pid_alive, wait_for_listen, wait_until

__all__ = [
    "IMPLEMENTATIONS",
    "LOOPS",
    "REPO_ROOT",
    "ConfigCheck",
    "Implementation",
    "MailProxy",
    "Mailgate",
    "MailgateOnLoop",
    "Nginx",
    "ProxyLog",
    "substitute",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
_PLACEHOLDER = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_LISTEN_PORT = re.compile(r"(?:^|[;{\s])listen\s[^;]*?\$\{?port_(\w+)")
_LOG_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] ")


@dataclass(frozen=True)
class ConfigCheck:
    """Outcome of ``-t``: exit code and what was printed."""

    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        """True when the configuration was accepted."""
        return self.returncode == 0


class Implementation:
    """How to run one proxy implementation."""

    name: str
    requires: tuple[str, ...] = ()
    """The components (tests/support/components.py) it runs on."""

    def command(self, prefix: Path, conf: Path, directives: str) -> list[str]:
        """The command line for ``-p prefix -c conf -e stderr -g directives``."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """Environment for the process."""
        return dict(os.environ)

    def directives(self, daemon: bool) -> str:
        """What this implementation needs in ``-g``.

        As root, both proxies' workers would run as nobody, who cannot reopen the
        error log (USR1) inside pytest's 0700 temporary directory: ``user root``.
        """
        return f"user root; daemon {'on' if daemon else 'off'};"


class Nginx(Implementation):
    """Debian's nginx with the dynamic mail module."""

    name = "nginx"
    requires = ("nginx",)

    def directives(self, daemon: bool) -> str:
        return f"load_module {NGINX_MAIL_MODULE}; " + super().directives(daemon)

    def command(self, prefix: Path, conf: Path, directives: str) -> list[str]:
        return [NGINX, "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr", "-g", directives]


class Mailgate(Implementation):
    """mailgate's binary (``python -m mailgate``), from the same package the tests import."""

    name = "mailgate"

    def environment(self) -> dict[str, str]:
        import mailgate

        # the binary must run the package this test process imports (installed or in place)
        root = str(Path(mailgate.__file__).resolve().parent.parent)
        env = dict(os.environ)
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = root + (os.pathsep + path if path else "")
        return env

    def command(self, prefix: Path, conf: Path, directives: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "mailgate",
            "-p",
            f"{prefix}/",
            "-c",
            str(conf),
            "-e",
            "stderr",
            "-g",
            directives,
        ]


IMPLEMENTATIONS: dict[str, Implementation] = {"nginx": Nginx(), "mailgate": Mailgate()}


# -- issue 11: the binary on a chosen event loop ---------------------------------------------

LOOPS = ("uvloop", "asyncio")
"""The event loops a ``mailgate`` binary's workers can be told to run (``MAILGATE_LOOP``)."""


class MailgateOnLoop(Mailgate):
    """The ``mailgate`` binary with ``MAILGATE_LOOP`` set: its workers run ``loop`` whatever
    is installed (``mailgate-uvloop``, ``mailgate-asyncio``)."""

    def __init__(self, loop: str) -> None:
        self.loop = loop
        self.name = f"mailgate-{loop}"

    def environment(self) -> dict[str, str]:
        return dict(super().environment(), MAILGATE_LOOP=self.loop)


IMPLEMENTATIONS.update({f"mailgate-{loop}": MailgateOnLoop(loop) for loop in LOOPS})


def substitute(text: str, values: Mapping[str, object], port: Callable[[str], int]) -> str:
    """``text`` (a ``string.Template``) with ``${port_NAME}`` as ``port(NAME)`` and every
    other ``$name`` from ``values``."""
    mapping = dict(values)
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1) or match.group(2)
        if name.startswith("port_"):
            mapping[name] = port(name[len("port_") :])
    try:
        return string.Template(text).substitute(mapping)
    except KeyError as exc:
        raise KeyError(f"no value for ${exc.args[0]} in the proxy configuration") from None


def _is_problem(line: str) -> bool:
    if "Traceback (most recent call last)" in line:
        return True
    match = _LOG_LINE.match(line)
    return match is not None and match.group(1) in ("alert", "emerg")


class ProxyLog:
    """Reading a proxy's error_log at ``error_log_path`` (set by the subclass)."""

    error_log_path: Path

    def error_log(self) -> str:
        """The error_log file's text so far."""
        if not self.error_log_path.exists():
            return ""
        return self.error_log_path.read_text(errors="replace")

    def log_lines(self, level: str | None = None) -> list[str]:
        """error_log lines, optionally only those of one ``level`` (e.g. "info")."""
        lines = self.error_log().splitlines()
        if level is None:
            return lines
        return [line for line in lines if (m := _LOG_LINE.match(line)) and m.group(1) == level]

    def problems(self) -> list[str]:
        """Log lines that point at a bug: [alert]/[emerg] lines and Python tracebacks."""
        return [line for line in self.error_log().splitlines() if _is_problem(line)]


class MailProxy(ProxyLog, NamedPorts):
    """One proxy instance: renders the config, starts, waits, stops, reads the log.

    Example::

        proxy = MailProxy(IMPLEMENTATIONS["nginx"], tmp_path / "nginx", ports,
                          values={"auth_http": auth.url})
        proxy.start('''
            server_name mx.test;
            auth_http $auth_http;
            server { listen 127.0.0.1:${port_imap}; protocol imap; }
        ''')
        imap = imaplib.IMAP4("127.0.0.1", proxy.port("imap"))
        ...
        log = proxy.stop()
    """

    def __init__(
        self,
        implementation: Implementation,
        directory: Path | str,
        ports: PortAllocator,
        *,
        values: Mapping[str, object] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.implementation = implementation
        self.prefix = Path(directory)
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.values: dict[str, object] = dict(values or {})
        self.conf_path = self.prefix / "mail.conf"
        self.error_log_path = self.prefix / "error.log"
        self.pid_path = self.prefix / "proxy.pid"
        self.process: ServerProcess | None = None
        self.daemon_pid: int | None = None
        self.tolerate_problems = False
        """Set when a test provokes [alert]/[emerg] lines on purpose."""
        self.worker_processes = 1
        """``worker_processes`` of the rendered file (set before ``start``)."""
        self.events = "worker_connections 1024;"
        """The ``events {}`` body of the rendered file (set before ``start``)."""
        self._ports = ports
        self._port_map: dict[str, int] = {}

    @property
    def name(self) -> str:
        """The implementation's name: "nginx" or "mailgate"."""
        return self.implementation.name

    # -- configuration ------------------------------------------------------------

    def render(self, mail_body: str, *, main: str = "", events: str | None = None) -> str:
        """The whole configuration file for ``mail { mail_body }`` (``events`` by default
        the ``events`` attribute)."""
        events = self.events if events is None else events
        text = (
            f"worker_processes {self.worker_processes};\n"
            f"error_log {self.error_log_path} info;\n"
            f"pid {self.pid_path};\n"
            f"events {{ {events} }}\n"
            f"{main}\n"
            f"mail {{\n{mail_body}\n}}\n"
        )
        return substitute(text, dict(self.values, prefix=self.prefix), self.port)

    def check_config(self, mail_body: str, *, main: str = "") -> ConfigCheck:
        """Run ``-t`` on the rendered configuration (nothing is started)."""
        self.conf_path.write_text(self.render(mail_body, main=main))
        impl = self.implementation
        argv = impl.command(self.prefix, self.conf_path, impl.directives(False))
        done = subprocess.run(
            argv + ["-t"], capture_output=True, env=impl.environment(), timeout=30, check=False
        )
        return ConfigCheck(done.returncode, (done.stdout + done.stderr).decode(errors="replace"))

    # -- lifecycle ------------------------------------------------------------------

    def start(
        self, mail_body: str, *, main: str = "", daemon: bool = False, timeout: float = 10.0
    ) -> MailProxy:
        """Write the configuration, start the proxy, wait until every listen accepts."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        text = self.render(mail_body, main=main)
        self.conf_path.write_text(text)
        listens = sorted({self.port(name) for name in _LISTEN_PORT.findall(mail_body)})
        impl = self.implementation
        argv = impl.command(self.prefix, self.conf_path, impl.directives(daemon))
        self.process = ServerProcess(
            argv, log_dir=self.prefix, name=self.name, env=impl.environment(), cwd=self.prefix
        )
        self.process.start()
        try:
            if daemon:
                self._await_daemon(timeout)
            alive = self._daemon_alive if daemon else self.process.alive
            wait_for_listen([(self.host, p) for p in listens], timeout, alive=alive)
        except StartupError as exc:
            diagnostics = self.diagnostics()
            self.stop()
            raise StartupError(f"{self.name} did not start: {exc}\n{diagnostics}") from None
        return self

    def _await_daemon(self, timeout: float) -> None:
        assert self.process is not None and self.process.popen is not None
        try:
            code = self.process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StartupError("the daemonizing parent did not exit") from None
        if code != 0:
            raise StartupError(f"exit code {code}")
        if not wait_until(
            lambda: self.pid_path.exists() and self.pid_path.read_text().strip(), timeout
        ):
            raise StartupError(f"no pid file {self.pid_path}")
        self.daemon_pid = int(self.pid_path.read_text())

    def _daemon_alive(self) -> bool:
        return self.daemon_pid is not None and pid_alive(self.daemon_pid)

    @property
    def running(self) -> bool:
        """True while the proxy's master process lives."""
        if self.daemon_pid is not None:
            return self._daemon_alive()
        return self.process is not None and self.process.alive()

    @property
    def master_pid(self) -> int:
        """Pid of the master process (foreground child or daemon)."""
        if self.daemon_pid is not None:
            return self.daemon_pid
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def send_signal(self, sig: int) -> None:
        """Send a signal to the master (HUP reload, QUIT, USR1, ...)."""
        os.kill(self.master_pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> str:
        """Stop the proxy (everything in its process group), release ports, return the log."""
        if self.daemon_pid is not None:
            pid, self.daemon_pid = self.daemon_pid, None
            if pid_alive(pid):
                os.kill(pid, sig)
                wait_until(lambda: not pid_alive(pid), timeout)
            kill_group(pid)  # the daemon is the leader of its own session
        if self.process is not None:
            self.process.stop(timeout=timeout, sig=sig)
        self._ports.release(*self._port_map.values())
        self._port_map.clear()
        return self.error_log()

    # -- logs -----------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Problems of the error log and of the console output."""
        console = self.process.output() if self.process else ""
        return super().problems() + [line for line in console.splitlines() if _is_problem(line)]

    def diagnostics(self) -> str:
        """Config, console output and error log, for failure messages."""
        console = self.process.output() if self.process else ""
        conf = self.conf_path.read_text() if self.conf_path.exists() else ""
        return (
            f"--- {self.conf_path} ---\n{conf}--- console ---\n{console}"
            f"--- error.log ---\n{self.error_log()}"
        )

    def remove(self) -> None:
        """Stop and delete the prefix directory."""
        self.stop()
        shutil.rmtree(self.prefix, ignore_errors=True)
