"""A private redis-server on a dynamic loopback port (no persistence, no system config).

``stop()`` and ``start()`` again on the same port: what a test of Redis going away
and coming back needs.  ``client()`` is a synchronous redis-py client for looking at
what was stored.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .ports import PortAllocator
from .procs import ServerProcess, StartupError, wait_for_listen

__all__ = ["RedisServer"]


class RedisServer:
    """redis-server on ``127.0.0.1:port``, its files in ``directory``."""

    def __init__(self, directory: Path, ports: PortAllocator, *, password: str | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = ports.port()
        self.password = password
        self.process: ServerProcess | None = None

    @property
    def url(self) -> str:
        """The ``ssl_session_store`` address."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        argv = [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
                "--bind", self.host, "--save", "", "--appendonly", "no",
                "--dir", str(self.directory), "--daemonize", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        self.process = ServerProcess(argv, log_dir=self.directory, name="redis-server")
        self.process.start()
        try:
            wait_for_listen([(self.host, self.port)], timeout, alive=self.process.alive)
        except StartupError as exc:
            output = self.process.output()
            self.process.stop()
            raise StartupError(f"redis-server did not start: {exc}\n{output}") from None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def client(self):
        """A synchronous redis-py client of this server."""
        import redis

        return redis.Redis(host=self.host, port=self.port, password=self.password)
