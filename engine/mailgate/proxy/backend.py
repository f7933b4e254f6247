"""The backend side of a session: connect, PROXY header, login machine, relay.

``BackendSession`` owns the backend connection of one ``ClientSession``: it opens
it (the login timer, ``timeout``, covers connect, greeting and the whole login, as
in nginx), sends the PROXY protocol header first when ``proxy_protocol`` is on,
feeds the backend's replies to the login machine, and after the login relays the
backend's bytes to the client through the proxy buffer.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
from typing import TYPE_CHECKING

from mailgate.oserror import os_error_text
from mailgate.protocol.events import ConnectBackend
from mailgate.proxy.timers import Timed

if TYPE_CHECKING:
    from mailgate.proxy.session import ClientSession

__all__ = ["BackendSession"]

_DISCARD = memoryview(bytearray(4096))
RELAY_READ_SIZE = 64 * 1024


class _ThreadRelayInput(threading.local):
    """In the relay, backend bytes are read into one buffer shared by every session of
    a thread and handed on at once (encrypted into the TLS connection's BIO, or copied
    by the transport): a read takes what the socket holds, several TLS records' worth,
    in one pass through Python, and no relaying session holds a read buffer.  One per
    thread, as the loops read sockets with the GIL released."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(RELAY_READ_SIZE))


_thread_relay_input = _ThreadRelayInput()


class _BackendProtocol(asyncio.BufferedProtocol):
    """asyncio's view of the backend connection; the work is done by BackendSession."""

    def __init__(self, owner: "BackendSession"):
        self.owner = owner

    def connection_made(self, transport) -> None:
        self.owner.connected(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.owner.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self.owner.buffer_updated(nbytes)

    def eof_received(self) -> bool:
        self.owner.eof()
        return True

    def connection_lost(self, exc) -> None:
        # no reference cycle through the transport once it is gone
        owner, self.owner = self.owner, None
        owner.lost(exc)

    def pause_writing(self) -> None:
        self.owner.client.peer_paused(True)

    def resume_writing(self) -> None:
        self.owner.client.peer_paused(False)


class BackendSession(Timed):
    """The backend connection and login of one client session."""

    def __init__(self, client: "ClientSession", target: ConnectBackend):
        self.client = client
        self.target = target
        self.loop = client.loop
        self.machine = client.machine.backend_login()
        self.transport: asyncio.Transport | None = None
        self.relay_buffer = None
        self._relay_in = _thread_relay_input.view  # the buffer of this session's thread
        self._wheel = client.proxy.timers  # the login timer (Timed)
        self._connect_task: asyncio.Task | None = None
        self._reading = True
        self._closed = False
        client.proxy.backends += 1

    # -- life cycle ------------------------------------------------------------

    def start(self) -> None:
        self.client.backend_actions(self.machine.start())
        self._connect_task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        target = self.target
        family = socket.AF_INET6 if ":" in target.server else socket.AF_INET
        try:
            await self.loop.create_connection(
                lambda: _BackendProtocol(self), target.server, target.port, family=family)
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            if self._closed:
                return
            if exc.errno == errno.ECONNREFUSED:
                # nginx connects without blocking and meets the refusal in recv()
                self.client._log("error", "recv() failed %s" % os_error_text(exc),
                                 "reading response from upstream")
            else:
                self.client._log("error", "connect() to %s failed %s" % (target.upstream, os_error_text(exc)),
                                 "connecting to upstream")
            self.client.backend_actions(self.machine.connection_lost())

    def connected(self, transport) -> None:
        self.transport = transport
        if self._closed:
            transport.close()
            return
        # TCP_NODELAY is set by asyncio and uvloop alike on every TCP transport
        transport.set_write_buffer_limits(high=self.client.runtime.config.proxy_buffer * 4)
        mode = self.client.runtime.config.proxy_protocol
        if mode != "off":
            # the very first bytes, in one write, before anything is read (SPEC §9.1)
            self.transport.write(self.client.proxy_protocol_header(mode))

    # -- reading -----------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.relay_buffer is not None:
            return self._relay_in
        view = self.machine.get_buffer(sizehint)
        return view if len(view) else _DISCARD

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed or not nbytes:
            return
        if self.relay_buffer is None:
            self.client.backend_actions(self.machine.buffer_updated(nbytes))
            return
        self.client.write_from_backend(self._relay_in[:nbytes])

    def eof(self) -> None:
        if self.relay_buffer is None:
            # nginx fails the login without a word (ngx_mail_proxy_read_response reads
            # 0 bytes); the operator is told which backend left, and in which step
            if not self._closed and not self.machine.finished:
                self.client._log("error", "upstream prematurely closed connection")
            self.client.backend_actions(self.machine.connection_lost())
        else:
            self.client.backend_closed()

    def lost(self, exc) -> None:
        if self._closed:
            return
        if self.relay_buffer is None:
            if exc is not None:
                self.client._log("error", "recv() failed %s" % os_error_text(exc),
                                 "reading response from upstream")
            self.client.backend_actions(self.machine.connection_lost())
        else:
            self.client.backend_closed()

    def pause_reading(self) -> None:
        if self.transport is not None and self._reading and not self._closed:
            self._reading = False
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self._reading and not self._closed:
            self._reading = True
            self.transport.resume_reading()

    # -- writing and timers ---------------------------------------------------------

    def write(self, data) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(bytes(data))

    def timeout_expired(self) -> None:
        if not self._closed:
            self.client.backend_actions(self.machine.timer_expired())

    # -- relay -------------------------------------------------------------------------

    def start_relay(self, buffer) -> None:
        """The login is done: ``buffer`` (what the client sees first) becomes the relay buffer."""
        self.relay_buffer = buffer
        if len(buffer):
            self.client.write_from_backend(buffer.readable())
            buffer.consume(len(buffer))
        rest = self.machine.take_unread()
        if rest:
            self.client.write_from_backend(rest)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.client.proxy.backends -= 1
        self.cancel_timeout()
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
        if self.transport is not None:
            self.transport.close()
