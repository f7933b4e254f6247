"""The backend side of a session: connect, PROXY header, login machine, relay.

``BackendSession`` owns the backend connection of one client session: it opens it
(the login timer, ``timeout``, covers connect, greeting and the whole login, as in
nginx's ngx_mail_proxy_module.c), sends the PROXY protocol header first when
``proxy_protocol`` is on, carries out the backend login machine's actions, and after
the login relays the backend's bytes to the client.

It talks to the client session only through ``ClientSide``: log a line in the
session's context, hand over the first bytes of the relay, fail the login with a
reply for the client, deliver relayed bytes, and tell that the backend ended or that
its socket is full.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
from typing import TYPE_CHECKING, Protocol

from mailgate.oserror import os_error_text
from mailgate.protocol import events
from mailgate.proxy.actions import arm_timer, run_actions
from mailgate.proxy.timers import Timed

if TYPE_CHECKING:
    from mailgate.proxy.stats import WorkerStats
    from mailgate.proxy.timers import TimerWheel

__all__ = ["BackendSession", "ClientSide", "RELAY_READ_SIZE"]

_DISCARD = memoryview(bytearray(4096))
RELAY_READ_SIZE = 64 * 1024


class ClientSide(Protocol):
    """What the backend side needs of the client session it serves."""

    def log(self, level: str, message: str, action: str | None = None) -> None:
        """A line in the session's context (``action`` None: the session's current one)."""

    def login_done(self, first: bytes) -> None:
        """The backend took the login; ``first`` is what the client sees before the relay."""

    def login_failed(self, reply: bytes) -> None:
        """The login failed: send ``reply`` (may be empty) to the client and end."""

    def deliver(self, data) -> None:
        """Relayed backend bytes for the client."""

    def backend_closed(self) -> None:
        """The backend ended the relay (end of input or an error)."""

    def backend_paused(self, paused: bool) -> None:
        """The backend's socket is full (True) or drained (False)."""


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

    __slots__ = ("owner",)

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
        self.owner.client.backend_paused(True)

    def resume_writing(self) -> None:
        self.owner.client.backend_paused(False)


class BackendSession(Timed):
    """The backend connection and login of one client session.

    ``machine`` is the backend login machine (``ServerMachine.backend_login()``),
    ``config`` the server's settings, ``proxy_header`` the bytes to send first (the
    PROXY protocol header, or empty).
    """

    __slots__ = ("_closed", "_connect_task", "_due", "_failure", "_reading", "_relay_in", "_slot",
                 "_wheel", "client", "config", "connect_time", "loop", "machine", "proxy_header",
                 "relaying", "stats", "target", "transport")

    def __init__(self, client: ClientSide, target: events.ConnectBackend, machine, config,
                 wheel: "TimerWheel", stats: "WorkerStats", proxy_header: bytes = b""):
        self.client = client
        self.target = target
        self.machine = machine
        self.config = config
        self.proxy_header = proxy_header
        self.stats = stats
        self._wheel = wheel  # the login timer (Timed)
        self._due = self._slot = None
        self.loop = wheel.loop
        self.transport: asyncio.Transport | None = None
        self.relaying = False
        self._relay_in = _thread_relay_input.view  # the buffer of this session's thread
        self._connect_task: asyncio.Task | None = None
        self._reading = True
        self._closed = False
        # why a login fails, for the stats: what the machine did not like, unless the
        # connection failed, closed or timed out first
        self._failure = "invalid_response"
        #: seconds from the start of the connect to the connection (None until connected)
        self.connect_time: float | None = None
        stats.backend_opened(target.upstream)

    @property
    def log_action(self) -> str:
        """nginx's action for the login step the backend is in."""
        return self.machine.log_action or ""

    # -- the machine's actions --------------------------------------------------------

    def run(self, actions) -> None:
        """Carry out the backend login machine's actions."""
        run_actions(self, _ACTIONS, actions)

    def _send_upstream(self, action: events.SendUpstream) -> None:
        self.write(action.data)

    def _disarm(self, action: events.DisarmTimer) -> None:
        self.cancel_timeout()

    def _log(self, action: events.Log) -> None:
        self.client.log(action.level, action.message, action.action or "")

    def _login_done(self, action: events.LoginDone) -> bool:
        """The login is done: the login buffer (what the client sees first) and what the
        backend sent after it go to the client, and the relay starts."""
        self.relaying = True
        buffer = action.buffer
        first = bytes(buffer.readable())
        buffer.consume(len(buffer))
        self.client.login_done(first + self.machine.take_unread())
        return True

    def _login_failed(self, action: events.LoginFailed) -> bool:
        self.stats.backend_error(self._failure, self.target.upstream)
        self.client.login_failed(action.to_client)
        return True

    # -- life cycle ------------------------------------------------------------

    def start(self) -> None:
        self.run(self.machine.start())
        self._connect_task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        target = self.target
        family = socket.AF_INET6 if ":" in target.server else socket.AF_INET
        started = self.loop.time()
        try:
            await self.loop.create_connection(
                lambda: _BackendProtocol(self), target.server, target.port, family=family)
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            if self._closed:
                return
            self._failure = "connect"
            if exc.errno == errno.ECONNREFUSED:
                # nginx connects without blocking and meets the refusal in recv()
                self.client.log("error", "recv() failed %s" % os_error_text(exc),
                                "reading response from upstream")
            else:
                self.client.log("error", "connect() to %s failed %s"
                                % (target.upstream, os_error_text(exc)), "connecting to upstream")
            self.run(self.machine.connection_lost())
            return
        self.connect_time = self.loop.time() - started

    def connected(self, transport) -> None:
        self.transport = transport
        if self._closed:
            transport.close()
            return
        # TCP_NODELAY is set by asyncio and uvloop alike on every TCP transport
        transport.set_write_buffer_limits(high=self.config.proxy_buffer * 4)
        if self.proxy_header:
            # the very first bytes, in one write, before anything is read
            # (ngx_mail_proxy_send_proxy_protocol())
            transport.write(self.proxy_header)

    # -- reading -----------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.relaying:
            return self._relay_in
        view = self.machine.get_buffer(sizehint)
        return view if len(view) else _DISCARD

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed or not nbytes:
            return
        if not self.relaying:
            self.run(self.machine.buffer_updated(nbytes))
            return
        self.stats.to_client(nbytes)
        self.client.deliver(self._relay_in[:nbytes])

    def eof(self) -> None:
        if not self.relaying:
            # nginx fails the login without a word (ngx_mail_proxy_read_response() reads
            # 0 bytes); the operator is told which backend left, and in which step
            # (docs/differences.md#backend-login-and-relay)
            if not self._closed and not self.machine.finished:
                self._failure = "closed"
                self.client.log("error", "upstream prematurely closed connection")
            self.run(self.machine.connection_lost())
        else:
            self.client.backend_closed()

    def lost(self, exc) -> None:
        if self._closed:
            return
        if not self.relaying:
            if exc is not None:
                self._failure = "closed"
                self.client.log("error", "recv() failed %s" % os_error_text(exc),
                                "reading response from upstream")
            self.run(self.machine.connection_lost())
        else:
            if exc is not None:
                # nginx's action names the side it was reading (ngx_mail_proxy_handler())
                self.client.log("error", "recv() failed %s" % os_error_text(exc),
                                "proxying and reading from upstream")
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

    def relay(self, data) -> None:
        """Client bytes for the backend, in the relay."""
        self.stats.to_backend(len(data))
        self.write(data)

    def timeout_expired(self) -> None:
        if not self._closed:
            self._failure = "timeout"
            self.run(self.machine.timer_expired())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stats.backend_closed(self.target.upstream)
        self.cancel_timeout()
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
        if self.transport is not None:
            self.transport.close()


_ACTIONS = {
    events.SendUpstream: BackendSession._send_upstream,
    events.ArmTimer: arm_timer,
    events.DisarmTimer: BackendSession._disarm,
    events.Log: BackendSession._log,
    events.LoginDone: BackendSession._login_done,
    events.LoginFailed: BackendSession._login_failed,
}

