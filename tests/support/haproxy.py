"""A private HAProxy in TCP mode on loopback, in the foreground, with a configuration of
the test's: ``start(body)`` puts ``body`` (frontends and backends, ``${port_NAME}``
placeholders allowed) after global and default sections of its own."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from .ports import NamedPorts, PortAllocator
from .procs import ServerProcess, StartupError, wait_for_listen
from .proxy import substitute

__all__ = ["HAProxy"]

_BIND_PORT = re.compile(r"^\s*bind\s[^\n]*?\$\{?port_(\w+)", re.M)

_HEAD = """\
global
    maxconn 1000

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout check 2s
"""


class HAProxy(NamedPorts):
    """haproxy -db on the configuration ``directory/haproxy.cfg``."""

    def __init__(self, directory: Path, ports: PortAllocator):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.conf_path = self.directory / "haproxy.cfg"
        self.process: ServerProcess | None = None
        self._ports = ports
        self._port_map: dict[str, int] = {}

    def start(self, body: str, values: dict[str, object] | None = None, timeout: float = 10.0) -> None:
        """Write the configuration and start; wait until every ``bind`` port listens."""
        self.conf_path.write_text(_HEAD + substitute(body, values or {}, self.port))
        binds = sorted({self.port(name) for name in _BIND_PORT.findall(body)})
        haproxy = shutil.which("haproxy") or "haproxy"
        check = subprocess.run([haproxy, "-c", "-f", str(self.conf_path)], capture_output=True,
                               timeout=timeout, check=False)
        if check.returncode != 0:
            raise StartupError("haproxy -c failed:\n" + (check.stdout + check.stderr).decode(errors="replace"))
        self.process = ServerProcess([haproxy, "-db", "-f", self.conf_path],
                                     log_dir=self.directory, name="haproxy")
        self.process.start()
        try:
            wait_for_listen([(self.host, p) for p in binds], timeout, alive=self.process.alive)
        except StartupError as exc:
            output = self.process.output()
            self.stop()
            raise StartupError(f"haproxy did not start: {exc}\n{output}") from None

    def output(self) -> str:
        return self.process.output() if self.process is not None else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        self._ports.release(*self._port_map.values())
        self._port_map.clear()
