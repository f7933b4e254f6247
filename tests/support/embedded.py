"""mailgate's ``MailProxy`` embedded in the test process, on an event loop of its own thread,
with the face of the process runner (``tests/support/proxy.py``), so that a test written
for nginx and the ``mailgate`` binary runs against it too.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from mailgate import Config
from mailgate.log import LogFiles
from mailgate.proxy.mailproxy import MailProxy

from .ports import PortAllocator
from .proxy import ProxyLog, substitute

__all__ = ["EmbeddedProxy", "LoopThread"]


class LoopThread:
    """An event loop running on a daemon thread; blocking code hands it coroutines."""

    def __init__(self, loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop):
        self.loop = loop_factory()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run ``coro`` on the loop; its result (or exception), waited for ``timeout``."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop, join the thread, close the loop (once)."""
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


class EmbeddedProxy(ProxyLog, LoopThread):
    """``MailProxy`` served on a background thread's loop; blocking clients talk to it.

    ``start(body, main="", auth=None)`` renders the ``mail {}`` body like the process
    runner (``${port_NAME}``, ``$auth_http`` and the other ``values``, ``$prefix``),
    with ``error_log`` at info to ``error_log_path`` unless the body sets one; ``auth`` is
    the embedding API's auth callable instead of ``auth_http``, ``on_session`` its callable
    receiving each finished session's record.  ``port(name)``,
    ``address(name)``, ``log_lines(level)``, ``problems()``, ``tolerate_problems``,
    ``worker_pids()`` (this process) and ``stop()`` as the runner's; ``call(coro)`` runs
    a coroutine on the proxy's loop (``proxy`` is the ``MailProxy`` once started).

    Exceptions that reach the event loop's handler are kept in ``loop_errors``: they are
    the embedded equivalent of a traceback in a worker's log and count as problems.
    """

    name = "embedded"

    def __init__(self, directory: Path, ports: PortAllocator, values: dict[str, object], *,
                 loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop):
        self.directory = Path(directory)
        self.ports = ports
        self.values = dict(values, prefix=self.directory)
        self.named_ports: dict[str, int] = {}
        self.error_log_path = self.directory / "error.log"
        self.tolerate_problems = False
        self.loop_errors: list[str] = []
        self.proxy: MailProxy | None = None
        super().__init__(loop_factory)
        self.loop.set_exception_handler(self._record)

    def _record(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        self.loop_errors.append("{}: {!r}".format(context.get("message"), context.get("exception")))

    def port(self, name: str) -> int:
        """The port of ``${port_NAME}`` (allocated if new)."""
        if name not in self.named_ports:
            self.named_ports[name] = self.ports.port()
        return self.named_ports[name]

    def address(self, name: str) -> tuple[str, int]:
        return ("127.0.0.1", self.port(name))

    def render(self, body: str) -> str:
        return substitute(body, self.values, self.port)

    def start(self, body: str, *, main: str = "", auth=None, on_session=None) -> EmbeddedProxy:
        text = "%s\nmail {\n%s\n}\n" % (main, self.render(body))
        if "error_log" not in body:
            text = "error_log %s info;\n%s" % (self.error_log_path, text)
        config = Config.from_string(text, prefix=str(self.directory))

        async def start():
            self.proxy = MailProxy(config, auth=auth, log_files=LogFiles(), on_session=on_session)
            await self.proxy.start()

        self.call(start())
        return self

    def problems(self) -> list[str]:
        return super().problems() + ["event loop: " + e for e in self.loop_errors]

    def worker_pids(self) -> list[int]:
        return [os.getpid()]

    def stop(self) -> None:
        """Close the proxy at once, end the loop's thread, release the ports."""
        if self.proxy is not None and self.thread.is_alive():
            self.call(self.proxy.close(graceful=False))
        self.proxy = None
        self.close()
        self.ports.release(*self.named_ports.values())
        self.named_ports.clear()
