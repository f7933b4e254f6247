"""One session per client connection: its phases, from accept to close.

``ClientSession`` is the asyncio protocol of a client connection.  It walks the
phases nginx's mail module walks (ngx_mail_handler.c): the PROXY protocol header,
implicit TLS and the client certificate policy, the SMTP client's name, the
greeting, the pre-auth commands (the sans-I/O machine of ``mailgate.protocol``),
the auth request, the backend (``BackendSession``: connect and log in), the relay,
and the close.  TLS on the client socket is ``TLSTransport``'s; the counters go to
the worker's ``WorkerStats``.

Reads go straight into the machine's command buffer (``get_buffer``) for plaintext,
or into the TLS stream's input buffer; the relay moves bytes between the relay buffer
and the transports, pausing a side whose peer cannot take more, so a slow reader
never grows memory beyond the buffers.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING, Any, Protocol

from mailgate.auth import ProxyAddresses
from mailgate.inet import sockaddr_text
from mailgate.log import SessionContext
from mailgate.oserror import os_error_text
from mailgate.protocol import events
from mailgate.proxy import proxy_protocol
from mailgate.proxy.actions import arm_timer, run_actions
from mailgate.proxy.auth_phase import AuthPhase
from mailgate.proxy.backend import BackendSession
from mailgate.proxy.phases import (
    BACKEND,
    CLOSING,
    HANDSHAKE,
    PRE_AUTH,
    PROXY_HEADER,
    RELAY,
    RESOLVING,
)
from mailgate.proxy.preauth import PreAuthPhase
from mailgate.proxy.record import session_record
from mailgate.proxy.relay import RelayPhase
from mailgate.proxy.tls_transport import DISCARD, TLSTransport
from mailgate.tls import TLSStream

if TYPE_CHECKING:
    from mailgate.proxy.runtime import ServerRuntime

__all__ = ["ClientSession", "SessionSource"]

PROXY_HEADER_MAX = proxy_protocol.PEEK_MAX
TIMED_OUT = "(110: Connection timed out)"


class SessionSource(Protocol):
    """What a session needs of the listener that accepted it (``mailproxy.Listener``)."""

    proxy: Any  #: the MailProxy: its sessions, its timer wheel
    listen: Any  #: the ``listen`` of the socket
    nodelay_by_hand: bool  #: the loop does not set TCP_NODELAY on this socket

    def route(self, transport) -> "ServerRuntime":
        """The ``server {}`` of a connection."""


class ClientSession(asyncio.BufferedProtocol, TLSTransport, PreAuthPhase, AuthPhase,
                    RelayPhase):
    """The client side of one proxied mail session.

    The phases before the auth request (``PreAuthPhase``), the auth phase
    (``AuthPhase``), the backend and relay phases (``RelayPhase``) and TLS on the
    client socket (``TLSTransport``) are parts of it kept in modules of their own, as
    nginx keeps ngx_mail_auth_http_module.c and ngx_mail_proxy_module.c apart from
    ngx_mail_handler.c, all working on one session.  This module has the connection's
    life: the asyncio callbacks, the machine's actions, the timeout, the close.
    """

    # no per-session __dict__: less memory for every idle connection, quicker to make
    __slots__ = (
        "_auth_task", "_closed", "_due", "_early", "_header", "_header_length",
        "_backend_paused", "_peer_eof", "_pumping", "_reading", "_slot", "_tls_closing",
        "_wheel", "auth_status", "backend", "bytes_received", "bytes_sent", "client_address",
        "client_host", "client_port", "close_reason", "ctx", "listen", "listener", "loop",
        "machine", "number", "outcome", "phase", "proxy", "proxy_addresses", "runtime",
        "started", "tls", "tls_implicit", "transport", "unix", "upstream_connect_time",
    )

    def __init__(self, listener: SessionSource, number: int):
        self.listener = listener
        self.proxy = listener.proxy
        self.listen = listener.listen
        self.runtime: "ServerRuntime | None" = None  # the server{}, known once accepted
        self.number = number
        self._wheel = listener.proxy.timers  # the session's one timeout (Timed)
        self._due = self._slot = None
        self.loop = self._wheel.loop
        self.transport: asyncio.Transport | None = None
        self.phase = PROXY_HEADER
        self.outcome = "client_closed"  # how the session ended, for the stats
        # for the access log (SessionRecord): what ended a relay, the last auth answer,
        # the bytes on the client connection, when it began (epoch)
        self.close_reason: str | None = None
        self.auth_status: str | None = None
        self.upstream_connect_time: float | None = None
        self.bytes_sent = self.bytes_received = 0
        self.started = 0.0
        self.ctx: SessionContext | None = None
        self.machine = None
        self.tls: TLSStream | None = None
        self.tls_implicit = False
        self.client_address = ""
        self.client_port = 0
        self.unix = False
        self.proxy_addresses: ProxyAddresses | None = None
        self.client_host: str | None = None
        self.backend: BackendSession | None = None
        self._header: memoryview | None = None  # the PROXY header, read before anything
        self._header_length = 0
        self._early = b""  # plaintext that came with the PROXY header
        self._reading = True
        self._backend_paused = False  # the backend cannot take more: stop reading the client
        self._peer_eof = False
        self._closed = False
        self._auth_task: asyncio.Task | None = None
        self._pumping = False
        self._tls_closing = False

    # -- asyncio: connection ------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.started = time.time()
        peer = transport.get_extra_info("peername")
        if peer is None or self._closed:
            # reset before it was accepted (uvloop has no address for it then), or ended
            # by a fast stop before the loop got here: nothing to serve
            self._closed = True
            transport.abort()
            return
        if self.listener.nodelay_by_hand:
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(peer, tuple):
            self.client_address, self.client_port = peer[0], peer[1]
        else:
            self.unix = True
            self.client_address = "unix:"
        runtime = self.runtime = self.listener.route(transport)
        runtime.stats.session_opened(runtime.config.protocol)
        log = runtime.log
        if log.debug:  # ngx_event_accept()'s line
            log.log("debug", "accept: %s fd:%d" % (
                "unix:" if self.unix else sockaddr_text(peer),
                transport.get_extra_info("socket").fileno()), conn=self.number)
        if log.enabled("info"):
            log.log("info", "*%d client %s connected to %s" % (
                self.number, "unix:" if self.unix else sockaddr_text(peer), self.listen.addr_text))
        self.ctx = SessionContext(self.number, self.client_address, self.listen.addr_text)
        if self.listen.proxy_protocol:
            self._header = memoryview(bytearray(PROXY_HEADER_MAX))
            self.arm_timeout(runtime.config.timeout)
        else:
            self._after_proxy_header()

    def connection_lost(self, exc) -> None:
        if not self._closed and self.ctx is not None:
            if exc is not None:
                # client-side network errors are logged at info for mail, in the relay
                # with the side it was reading (ngx_mail_proxy_handler, ngx_mail_read_command)
                self.log("info", "recv() failed %s" % os_error_text(exc),
                         "proxying and reading from client" if self.phase == RELAY else None)
            if self.phase == RELAY:  # a read error ends the relay as an EOF does
                self.log("info", "proxied session done", "")
        self._finish()

    # -- asyncio: reading ---------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.tls is not None:
            return DISCARD if self._closed and not self._tls_closing else self.tls.input
        if self._closed:
            return DISCARD
        phase = self.phase
        if phase == PRE_AUTH:
            view = self._active_machine().get_buffer(sizehint)
            return view if len(view) else DISCARD
        if phase == RELAY:
            view = self.machine.buffer.get_buffer(sizehint)
            return view if len(view) else DISCARD
        if phase == PROXY_HEADER:
            return self._header[self._header_length:]
        return DISCARD

    def buffer_updated(self, nbytes: int) -> None:
        self.bytes_received += nbytes
        if self.tls is not None:  # there is no PROXY header left to read then
            if self._tls_closing:
                self._tls_closing_input(nbytes)
            elif nbytes and not self._closed:
                self._tls_input(nbytes)
            return
        if self._closed or not nbytes:
            return
        phase = self.phase
        if phase == PROXY_HEADER:
            self._header_length += nbytes
            self._proxy_header()
            return
        if phase == PRE_AUTH:
            self._run(self.machine.buffer_updated(nbytes))
        elif phase == RELAY:
            self.machine.buffer.buffer_updated(nbytes)
            self._relay_to_backend()
        self._update_reading()

    def eof_received(self) -> bool:
        self._peer_eof = True
        if self._closed:
            return False
        tls = self.tls
        if tls is not None:
            if tls.feed_eof() and self.phase == PRE_AUTH and (
                    self.machine is None or self.machine.want_read):
                self._tls_peer_closed()  # all that reading on would find: TLSClosed
            else:
                self._tls_input()
            return True
        if self.phase == PRE_AUTH:
            self._tls_peer_closed()
        elif self.phase == RELAY:
            self._relay_client_eof()
        else:
            self._close(quiet=True)
        return True

    # -- asyncio: writing -------------------------------------------------------

    def pause_writing(self) -> None:
        if self.backend is not None:
            self.backend.pause_reading()

    def resume_writing(self) -> None:
        if self.phase == RELAY:
            self._touch()  # a client-side event re-arms proxy_timeout
        if self.backend is not None:
            self.backend.resume_reading()

    def _run(self, actions) -> None:
        """Carry out a machine's actions, in order; then read on if it wants input."""
        if not run_actions(self, _ACTIONS, actions) and self.phase == PRE_AUTH:
            self._resume_input()

    def _send(self, action: events.Send) -> None:
        self._write(action.data)

    def _disarm(self, action: events.DisarmTimer) -> None:
        self.disarm_timeout()

    def _log_action(self, action: events.Log) -> None:
        self.log(action.level, action.message, action.action or "")

    def _close_action(self, action: events.Close) -> bool:
        if action.timed_out:
            self.outcome = "timeout"
        elif self.machine is not None and self.machine.errors >= self.runtime.config.max_errors:
            self.outcome = "rejected"
        self._close(quiet=action.timed_out)
        return True

    # -- timers ---------------------------------------------------------------------------

    def timeout_expired(self) -> None:
        if self._tls_shutdown_expired() or self._closed:
            return
        phase = self.phase
        if phase == PRE_AUTH:
            self._run(self._active_machine().timer_expired())
        elif phase == RELAY:
            self.log("info", "client timed out %s" % TIMED_OUT, "proxying")
            self.close_reason = "timeout"
            self._close(quiet=True)
        else:
            # PROXY header, TLS handshake: nginx closes without a word
            self.log("info", "client timed out %s" % TIMED_OUT)
            self.outcome = "timeout"
            self._close(quiet=True)

    # -- reading state, closing -----------------------------------------------------------------

    def _update_reading(self) -> None:
        if self._closed or self.transport is None:
            return
        phase = self.phase
        if phase in (PROXY_HEADER, HANDSHAKE):
            want = True
        elif phase == PRE_AUTH:
            want = self.machine is None or self.machine.want_read
        elif phase == RELAY:
            want = not self._backend_paused and (
                self.tls is not None or not self.machine.buffer.full)
        else:
            want = False
        if want != self._reading:
            self._reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def _close(self, quiet: bool = False) -> None:
        """Close after what was written is sent (TLS: ``TLSTransport._close_transport``)."""
        if self._closed:
            return
        self._closed = True
        self.phase = CLOSING
        self.cancel_timeout()
        if self._auth_task is not None and not self._auth_task.done():
            self._auth_task.cancel()
        if self.backend is not None:
            self.backend.close()
        if self.transport is not None:
            self._close_transport(quiet)

    def shutdown(self, reason: str | None = None) -> None:
        """End the session now (fast shutdown, or a graceful one that ran out of time)."""
        if self.outcome != "proxied":
            self.outcome = "shutdown"
        self.close_reason = "shutdown"
        if reason and self.runtime is not None:
            self.log("info", reason, "proxying" if self.phase == RELAY else None)
        self._close(quiet=True)

    def _finish(self) -> None:
        runtime = self.runtime
        if runtime is not None:
            runtime.stats.session_ended(runtime.config.protocol, self.outcome)
            if self.close_reason is None:
                self.close_reason = self.outcome
            if runtime.log.debug:
                self.log("debug", "close mail connection: %s, %s" % (self.outcome, self.close_reason))
            if runtime.wants_records:
                runtime.session_ended(session_record(self))
        self._closed = True
        self.cancel_timeout()
        if self.backend is not None:
            self.backend.close()
        if self.tls is not None:
            self.tls.close()
            self.tls = None
        self.proxy.sessions.discard(self)
        # The transport and the backend point back at this session: let go of them, so
        # that reference counting frees the whole session when its connections are
        # gone, instead of the cyclic garbage collector, whose runs cost far more.
        self.transport = None
        self.backend = None

    # -- logging ---------------------------------------------------------------------------------

    def _action(self) -> str:
        """nginx's log action for what the session is doing now."""
        phase = self.phase
        if phase == PROXY_HEADER:
            return "reading PROXY protocol"
        if phase == HANDSHAKE:
            return "SSL handshaking" if self.tls_implicit else "in starttls state"
        if phase == RESOLVING:
            return "in resolving client address"
        if phase == PRE_AUTH:
            return self._active_machine().log_action or ""
        if phase == BACKEND:
            return self.backend.log_action if self.backend else "connecting to upstream"
        if phase == RELAY:
            return "proxying"
        return ""

    @property
    def debugging(self) -> bool:
        """Whether the server's error_log takes debug lines (TLSTransport asks)."""
        return self.runtime.log.debug

    def log(self, level: str, message: str, action: str | None = None) -> None:
        """A session line with nginx's context; ``action`` None means the current one,
        "" none at all."""
        log = self.runtime.log
        if not log.enabled(level):
            return
        if level == "debug":  # nginx's debug lines have no context (ngx_log_error_core())
            log.log(level, message, conn=self.number)
            return
        if self.machine is not None:
            self.ctx.login = self.machine.login
        log.log(level, self.ctx.describe(message, self._action() if action is None else action),
                conn=self.number)


_ACTIONS = {
    events.Send: ClientSession._send,
    events.ArmTimer: arm_timer,
    events.DisarmTimer: ClientSession._disarm,
    events.Log: ClientSession._log_action,
    events.Close: ClientSession._close_action,
    events.StartTLS: ClientSession._starttls,
    events.AuthRequest: ClientSession._auth_request,
    events.ConnectBackend: ClientSession._connect_backend,
}
