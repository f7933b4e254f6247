"""An in-process mailgate (the embedding API) for tests, on its own event-loop thread."""

from __future__ import annotations

import asyncio
import string
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mailgate import Config
from mailgate.log import LogFiles
from mailgate.proxy.mailproxy import MailProxy


class EmbeddedProxy:
    """``MailProxy`` served on a background thread's loop; blocking clients talk to it.

    ``start(body)`` renders the mail{} body like the support runner does (``$auth_http``,
    ``${port_NAME}``), with ``error_log`` at info to a file the test can read.
    """

    def __init__(self, directory: Path, ports, values: dict, loop_factory=asyncio.new_event_loop):
        self.directory = directory
        self.ports = ports
        self.values = dict(values)
        self.named_ports: dict[str, int] = {}
        self.loop = loop_factory()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy: MailProxy | None = None
        self.log_path = directory / "error.log"

    def _port(self, name: str) -> int:
        if name not in self.named_ports:
            self.named_ports[name] = self.ports.port()
        return self.named_ports[name]

    def render(self, body: str) -> str:
        class Values(dict):
            def __missing__(inner, key):  # noqa: N805
                if key.startswith("port_"):
                    return self._port(key[5:])
                raise KeyError(key)

        return string.Template(body).substitute(Values(self.values))

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, body: str, *, auth=None, main: str = "") -> "EmbeddedProxy":
        text = "%s\nmail {\n%s\n}\n" % (main, self.render(body))
        if "error_log" not in body:
            text = "error_log %s info;\n%s" % (self.log_path, text)
        config = Config.from_string(text, prefix=str(self.directory))

        async def start():
            self.proxy = MailProxy(config, auth=auth, log_files=LogFiles())
            await self.proxy.start()

        self.call(start())
        return self

    def address(self, name: str) -> tuple[str, int]:
        return ("127.0.0.1", self.named_ports[name])

    def log_lines(self, level: str | None = None) -> list[str]:
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [l for l in lines if level is None or "[%s]" % level in l]

    def stop(self) -> None:
        if self.proxy is not None:
            self.call(self.proxy.close(graceful=False))
            self.proxy = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def embedded(tmp_path: Path, port_allocator, proxy_values) -> Iterator[EmbeddedProxy]:
    proxy = EmbeddedProxy(tmp_path, port_allocator, proxy_values)
    try:
        yield proxy
    finally:
        proxy.stop()
        problems = [l for l in proxy.log_lines() if "[alert]" in l or "[emerg]" in l or "Traceback" in l]
        assert not problems, problems
