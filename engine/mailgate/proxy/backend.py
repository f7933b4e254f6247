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

TLS to the backend (mailgate's ``proxy_ssl`` / ``proxy_starttls``, or the auth
answer's ``Auth-SSL-Backend``) is ``TLSTransport``'s, as on the client socket, with a
client-side stream from the server's ``BackendTLS``: from the first byte after any
PROXY header, or when the login machine asks (``StartTLSUpstream``).  The server's
certificate is judged after the handshake (``proxy_ssl_verify``); a failed handshake
or verification fails the login as an unavailable backend does, with an ``[error]``
line saying why.  At the end close_notify is sent without waiting for the backend's,
as ngx_stream_proxy_module's finalization does (``no_wait_shutdown``).
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
from mailgate.proxy.tls_transport import TLSTransport
from mailgate.tls import TLSError

if TYPE_CHECKING:
    from mailgate.proxy.backend_tls import BackendTLS
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
        self.owner.eof_received()
        return True

    def connection_lost(self, exc) -> None:
        # no reference cycle through the transport once it is gone
        owner, self.owner = self.owner, None
        owner.lost(exc)

    def pause_writing(self) -> None:
        self.owner.client.backend_paused(True)

    def resume_writing(self) -> None:
        self.owner.client.backend_paused(False)


class BackendSession(TLSTransport):
    """The backend connection and login of one client session.

    ``machine`` is the backend login machine (``ServerMachine.backend_login()``),
    ``config`` the server's settings, ``proxy_header`` the bytes to send first (the
    PROXY protocol header, or empty), ``backend_tls`` the server's TLS to its backends
    (needed when ``target.tls`` is not ``off``).
    """

    __slots__ = ("_closed", "_connect_task", "_due", "_failure", "_peer_eof", "_reading",
                 "_relay_in", "_slot", "_tls_closing", "_wheel", "backend_tls", "bytes_sent",
                 "client", "config", "connect_time", "loop", "machine", "proxy_header", "relaying",
                 "stats", "target", "tls", "transport")

    def __init__(self, client: ClientSide, target: events.ConnectBackend, machine, config,
                 wheel: "TimerWheel", stats: "WorkerStats", proxy_header: bytes = b"",
                 backend_tls: "BackendTLS | None" = None):
        self.client = client
        self.backend_tls = backend_tls
        self.tls = None
        self._peer_eof = False
        self._tls_closing = False  # never set: close_notify is not waited for
        self.bytes_sent = 0  # TLSTransport's count; the access log counts the client's side
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
        tls = self.tls
        if tls is not None and not tls.handshake_done:
            return "SSL handshaking to upstream"
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

    def _start_tls_upstream(self, action: events.StartTLSUpstream) -> None:
        """The backend agreed to STARTTLS: from now on its bytes go to TLS."""
        self._start_tls(self._new_stream())

    def _login_done(self, action: events.LoginDone) -> bool:
        """The login is done: the login buffer (what the client sees first) and what the
        backend sent after it go to the client, and the relay starts."""
        self.relaying = True
        if self.tls is not None:
            # the session to resume next time (TLS 1.3's tickets have come by now)
            self.backend_tls.keep(self.target.server, self.target.port, self.tls)
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
        if self.target.tls == "on":
            self._start_tls(self._new_stream())

    # -- TLS (TLSTransport's callbacks) -------------------------------------------

    def _new_stream(self):
        target = self.target
        return self.backend_tls.stream(target.server, target.port, self.log)

    def _tls_established(self) -> bool:
        """The handshake with the backend is done: judge its certificate, then log in
        (implicit TLS: the greeting comes next; STARTTLS: the machine goes on)."""
        tls, target, settings = self.tls, self.target, self.backend_tls
        if settings.verify:
            reason = tls.check_server_certificate(settings.verify_name(target.server))
            if reason is not None:
                settings.forget(target.server, target.port)
                self._tls_failed(reason)
                return False
        if tls.session_reused:
            # nginx's debug line of ngx_ssl_handshake_log(), with the backend it names
            # (a debug line carries no session context to say it)
            self.client.log("debug", "SSL reused session, upstream: %s:%d"
                            % (target.server, target.port), "SSL handshaking to upstream")
        # the session is kept once the login is done (_login_done): by then TLS 1.3's
        # tickets, which come after the handshake, have been read
        if self.machine.state == "tls":
            self.run(self.machine.tls_established())
        return not self._closed

    def _tls_readable(self) -> None:
        """Plaintext from the backend: into the login machine, or to the client."""
        tls = self.tls
        machine = self.machine
        while not self._closed:
            if self.relaying:
                if not self._reading:
                    return  # the client is full: resume_reading() goes on
                view = self._relay_in
                n = tls.recv_into(view)
                if not n:
                    return
                self.stats.to_client(n)
                self.client.deliver(view[:n])
            else:
                view = machine.get_buffer(-1)
                if not len(view):
                    return
                n = tls.recv_into(view)
                if not n:
                    return
                self.run(machine.buffer_updated(n))

    def _tls_peer_closed(self) -> None:
        self.eof()

    def _close(self, quiet: bool) -> None:
        """A TLS failure (already logged by ``TLSTransport``): the login fails, or the
        relay ends."""
        if self._closed:
            return
        if self.relaying:
            self.client.backend_closed()
        else:
            self._failure = "tls"
            self.run(self.machine.connection_lost())

    def _tls_failed(self, reason: str) -> None:
        self.log("error", reason, "SSL handshaking to upstream")
        self._close(quiet=True)

    def log(self, level: str, message: str, action: str | None = None) -> None:
        """A line in the client session's context (``action`` None: the current one).
        A TLS failure before the login is done is an ``[error]``: the backend is
        unavailable."""
        if not self.relaying and level in ("info", "notice", "warn"):
            level = "error"
        self.client.log(level, message, self.log_action if action is None else action)

    # -- reading -----------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.tls is not None:
            return _DISCARD if self._closed else self.tls.input
        if self.relaying:
            return self._relay_in
        view = self.machine.get_buffer(sizehint)
        return view if len(view) else _DISCARD

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed or not nbytes:
            return
        if self.tls is not None:
            self._tls_input(nbytes)
            return
        if not self.relaying:
            self.run(self.machine.buffer_updated(nbytes))
            return
        self.stats.to_client(nbytes)
        self.client.deliver(self._relay_in[:nbytes])

    def eof_received(self) -> None:
        """The backend's end of input (the transport's EOF)."""
        tls = self.tls
        if tls is None or self._closed:
            self.eof()
            return
        self._peer_eof = True
        # what is still buffered is read first; the end then comes as TLSClosed
        tls.feed_eof()
        self._tls_input()

    def eof(self) -> None:
        """The backend ended its side: before the login is done, a failure."""
        if self._closed:
            return
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
            if self.tls is not None and self.relaying:
                self._tls_input()  # plaintext TLS decrypted but held back

    # -- writing and timers ---------------------------------------------------------

    def write(self, data) -> None:
        if self.transport is None or self._closed:
            return
        if self.tls is not None:
            self._write(data)
        else:
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
        tls = self.tls
        if tls is not None:
            transport = self.transport
            if (transport is not None and not transport.is_closing() and tls.handshake_done
                    and not self._peer_eof):
                # close_notify, not waited for (ngx_stream_proxy_finalize())
                try:
                    tls.shutdown()
                except TLSError:
                    tls.abort()
                self._flush_tls()
            tls.close()
        if self.transport is not None:
            self.transport.close()


_ACTIONS = {
    events.SendUpstream: BackendSession._send_upstream,
    events.ArmTimer: arm_timer,
    events.DisarmTimer: BackendSession._disarm,
    events.Log: BackendSession._log,
    events.LoginDone: BackendSession._login_done,
    events.LoginFailed: BackendSession._login_failed,
    events.StartTLSUpstream: BackendSession._start_tls_upstream,
}

