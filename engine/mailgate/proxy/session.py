"""One session per client connection: from accept to the end of the relay.

``ClientSession`` is the asyncio protocol of a client connection.  It drives the
sans-I/O machines of ``mailgate.protocol`` and carries out their actions: bytes to
the client (through ``TLSConnection`` once TLS is on), the single pre-auth timer,
STARTTLS, the auth request, the backend connection and its login machine, then the
relay.  nginx's order (SPEC §2.2): PROXY header, implicit TLS and the client
certificate policy, SMTP name resolution, greeting.

Reads go straight into the machine's command buffer (``get_buffer``) for plaintext,
or into a ciphertext buffer that is fed to TLS; the relay moves bytes between the
fixed-size relay buffers and the transports, pausing a side whose peer cannot take
more, so a slow reader never grows memory beyond the buffers.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

from mailgate.auth import AuthFacts, ProxyAddresses, SSLFacts
from mailgate.inet import TEMPUNAVAIL, UNAVAILABLE, sockaddr_text
from mailgate.log import SessionContext
from mailgate.oserror import os_error_text
from mailgate.protocol import server_for
from mailgate.protocol.events import (
    ArmTimer,
    AuthInternalError,
    AuthRequest,
    Close,
    ConnectBackend,
    DisarmTimer,
    Log,
    LoginDone,
    LoginFailed,
    Send,
    SendUpstream,
    StartTLS,
)
from mailgate.proxy import proxy_protocol
from mailgate.proxy.realip import realip_for
from mailgate.proxy.timers import Timed
from mailgate.tls import TLSClosed, TLSConnection, TLSError, TLSHandshakeError

if TYPE_CHECKING:
    from mailgate.proxy.mailproxy import Listener
    from mailgate.proxy.backend import BackendSession

__all__ = ["ClientSession"]

TLS_SHUTDOWN_WAIT = 3.0  # nginx waits this long for the peer's close_notify
PROXY_HEADER_MAX = proxy_protocol.PEEK_MAX
TIMED_OUT = "(110: Connection timed out)"
_DISCARD = memoryview(bytearray(4096))

# phases of a client connection
PROXY_HEADER = "proxy-header"
HANDSHAKE = "handshake"
RESOLVING = "resolving"
PRE_AUTH = "pre-auth"
BACKEND = "backend"
RELAY = "relay"
CLOSING = "closing"


class ClientSession(asyncio.BufferedProtocol, Timed):
    """The client side of one proxied mail session."""

    # no per-session __dict__: less memory for every idle connection, quicker to make
    __slots__ = (
        "_auth_task", "_client_eof", "_closed", "_due", "_early", "_header", "_header_length",
        "_peer_paused", "_pumping", "_reading", "_slot", "_tls_closing", "_wheel", "backend",
        "client_address", "client_host", "client_port", "ctx", "listen", "listener",
        "loop", "machine", "number", "phase", "proxy",
        "proxy_addresses", "runtime", "tls", "tls_implicit", "transport", "unix",
    )

    def __init__(self, listener: "Listener", number: int):
        self.listener = listener
        self.proxy = listener.proxy
        self.listen = listener.listen
        self.runtime = None  # the server{} this connection belongs to, known once accepted
        self.number = number
        self._wheel = listener.proxy.timers  # the session's one timeout (Timed)
        self._due = self._slot = None
        self.loop = self._wheel.loop
        self.transport: asyncio.Transport | None = None
        self.phase = PROXY_HEADER
        self.ctx: SessionContext | None = None
        self.machine = None
        self.tls: TLSConnection | None = None
        self.tls_implicit = False
        self.client_address = ""
        self.client_port = 0
        self.unix = False
        self.proxy_addresses: ProxyAddresses | None = None
        self.client_host: str | None = None
        self.backend: "BackendSession | None" = None
        self._header: memoryview | None = None  # the PROXY header, read before anything
        self._header_length = 0
        self._early = b""  # plaintext that came with the PROXY header
        self._reading = True
        self._peer_paused = False  # the backend cannot take more: stop reading the client
        self._client_eof = False
        self._closed = False
        self._auth_task: asyncio.Task | None = None
        self._pumping = False
        self._tls_closing = False  # close_notify sent, waiting for the client's

    # -- asyncio: connection ------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
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
        self.runtime = self.listener.route(transport)
        log = self.runtime.log
        if log.enabled("info"):
            log.log("info", "*%d client %s connected to %s" % (
                self.number, self._peer_text(peer), self.listen.addr_text))
        self.ctx = SessionContext(self.number, self.client_address, self.listen.addr_text)
        if self.listen.proxy_protocol:
            self._header = memoryview(bytearray(PROXY_HEADER_MAX))
            self.arm_timeout(self.runtime.config.timeout)
        else:
            self._after_proxy_header()

    def _peer_text(self, peer) -> str:
        return "unix:" if self.unix else sockaddr_text(peer)

    def connection_lost(self, exc) -> None:
        if not self._closed and self.ctx is not None:
            if exc is not None:
                # client-side network errors are logged at info for mail (SPEC §2.5)
                self._log("info", "recv() failed %s" % os_error_text(exc))
            if self.phase == RELAY:  # a read error ends the relay as an EOF does
                self._log("info", "proxied session done", "")
        self._finish()

    # -- asyncio: reading ---------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.tls is not None:
            return _DISCARD if self._closed and not self._tls_closing else self.tls.input
        if self._closed:
            return _DISCARD
        phase = self.phase
        if phase == PRE_AUTH:
            view = self._active_machine().get_buffer(sizehint)
            return view if len(view) else _DISCARD
        if phase == RELAY:
            view = self.machine.buffer.get_buffer(sizehint)
            return view if len(view) else _DISCARD
        if phase == PROXY_HEADER:
            return self._header[self._header_length:]
        return _DISCARD

    def buffer_updated(self, nbytes: int) -> None:
        tls = self.tls
        if tls is not None:  # there is no PROXY header left to read then
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
        self._client_eof = True
        if self._closed:
            return False
        tls = self.tls
        if tls is not None:
            if tls.feed_eof() and self.phase == PRE_AUTH and (
                    self.machine is None or self.machine.want_read):
                self._client_closed()  # all that reading on would find: TLSClosed
            else:
                self._tls_input()
            return True
        if self.phase == PRE_AUTH:
            self._client_closed()
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
            self._touch()  # a client-side event re-arms proxy_timeout (SPEC §9.6)
        if self.backend is not None:
            self.backend.resume_reading()

    # -- the PROXY protocol header ---------------------------------------------------

    def _proxy_header(self) -> None:
        data = bytes(self._header[: self._header_length])
        header = proxy_protocol.parse_first_read(data)
        if isinstance(header, proxy_protocol.ProxyHeaderError):
            if header.message is not None:
                self._log("error", header.message)
            self._close(quiet=True)
            return
        self.proxy_addresses = header.addresses
        real = realip_for(self.runtime.config.set_real_ip_from).client(
            header, None if self.unix else self.client_address)
        if real is not None:
            self.client_address, self.client_port = real
            self.ctx.client = self.client_address
        self.disarm_timeout()
        self._header = None
        self._after_proxy_header(data[header.length:])

    def _after_proxy_header(self, rest: bytes = b"") -> None:
        if self.listen.ssl:
            self.tls_implicit = True
            self._start_tls(rest)
            return
        self._init_protocol(rest)

    # -- TLS ---------------------------------------------------------------------

    def _start_tls(self, rest: bytes = b"") -> None:
        self.phase = HANDSHAKE
        self.tls = TLSConnection(self.runtime.tls, log=self._log)
        if self.tls_implicit:
            self.arm_timeout(self.runtime.config.timeout)
        if rest:
            self.tls.feed(rest)
            self._tls_input()
        if not self.tls_implicit:
            self._update_reading()  # STARTTLS: the machine had stopped reading

    def _tls_input(self, received: int = 0) -> None:
        """Go on with what TLS holds, after the ``received`` bytes in ``tls.input``."""
        tls = self.tls
        try:
            if self.phase == HANDSHAKE:
                if not tls.do_handshake(received):
                    self._flush_tls()
                    if self._client_eof:
                        raise TLSHandshakeError("peer closed connection in SSL handshake", "info")
                    return
                # what the handshake left to send (TLS 1.3 tickets) goes out in one
                # write with the greeting
                self._handshake_done()
                if not self._closed:
                    self._flush_tls()
                if self.phase != CLOSING:
                    return  # the machine has read on what came with the handshake
            elif received:
                tls.feed_input(received)
            if self.phase == PRE_AUTH:
                self._resume_input()
            elif self.phase == RELAY:
                self._relay_to_backend()
            elif self.phase == CLOSING:
                tls.recv_into(_DISCARD)
        except TLSClosed:
            self._client_closed()
        except TLSHandshakeError as exc:
            self._log(exc.level, str(exc))
            self._flush_tls()
            self._close(quiet=True)
        except TLSError as exc:
            self._log(exc.level, str(exc))
            self._close(quiet=True)
        except MemoryError:  # the received bytes could not be buffered
            self._abort()

    def _handshake_done(self) -> None:
        check = self.tls.check_client_certificate()
        if self.tls_implicit:
            # the handshake's timer goes on until the greeting's replaces it
            if not check.ok:
                self._log("info", check.message)
                machine = self._make_machine()
                self._run(machine.certificate_rejected(check.verdict.value == "no_cert"))
                return
            self._begin()
            return
        self.phase = PRE_AUTH
        self.ctx.starttls = True
        if not check.ok:
            self._log("info", check.message)
            self._run(self.machine.certificate_rejected(check.verdict.value == "no_cert"))
            return
        self._run(self.machine.tls_established())

    def _tls_to_machine(self) -> None:
        """Decrypt into the machine while it reads; called when OpenSSL has input."""
        machine = self._active_machine()
        tls = self.tls
        while self.phase == PRE_AUTH and machine.want_read:
            view = machine.get_buffer()
            if not len(view):
                break
            n = tls.recv_into(view)
            if not n:
                break
            self._run(machine.buffer_updated(n))
            if not tls.has_input():
                break

    def _flush_tls(self) -> None:
        if self.tls is not None:
            data = self.tls.data_to_send()
            if data:
                self.transport.write(data)

    def _client_closed(self) -> None:
        """The client's close_notify or end of input."""
        if self.phase == PRE_AUTH:
            if self.machine is None:
                self._close()  # what a greeted machine does at its client's end: close
            else:
                self._run(self.machine.eof_received())
        elif self.phase == RELAY:
            self._relay_client_eof()
        elif self.phase == HANDSHAKE:
            self._log("info", "peer closed connection in SSL handshake")
            self._close(quiet=True)
        else:
            self._close(quiet=True)

    # -- the protocol machine -----------------------------------------------------------

    def _make_machine(self, greeted: bool = False):
        config = self.runtime.config
        if config.protocol == "smtp":
            # without a resolver (or until it answers) the SMTP client is [UNAVAILABLE];
            # a UNIX-socket client is [TEMPUNAVAIL] (SPEC §6.1)
            self.client_host = TEMPUNAVAIL if self.unix else UNAVAILABLE
            self.machine = server_for(config, tls=self.tls is not None,
                                      client_addr=self.client_address,
                                      client_host=self.client_host, greeted=greeted)
        else:
            self.machine = server_for(config, tls=self.tls is not None, greeted=greeted)
        return self.machine

    def _active_machine(self):
        """The machine, made now if the session greeted with the server's fixed start."""
        return self.machine or self._make_machine(greeted=True)

    def _init_protocol(self, rest: bytes) -> None:
        self._early = rest
        self._begin()

    def _begin(self) -> None:
        config = self.runtime.config
        if config.protocol == "smtp" and self.runtime.resolver is not None and not self.unix:
            self._make_machine()
            self.phase = RESOLVING
            self.disarm_timeout()  # the resolver has its own
            self._update_reading()
            self.loop.create_task(self._resolve_then_greet())
            return
        self._greet()

    async def _resolve_then_greet(self) -> None:
        name = await self.runtime.resolver.resolve(self.client_address)
        if self._closed:
            return
        for line in name.logs:
            self._log(line.level, line.message, line.action or "")
        self.client_host = name.host
        self.machine.client_host = self.client_host
        self._greet()

    def _greet(self) -> None:
        self.phase = PRE_AUTH
        fixed = self.runtime.fixed_start
        if fixed is not None and self.machine is None and not self._early:
            # the server's greeting is the same for every connection: the machine is
            # made when the client first needs it (a client that never speaks costs none)
            self._run(fixed)
            return
        machine = self.machine or self._make_machine()
        self._run(machine.start())
        if self._early and self.phase == PRE_AUTH:
            early, self._early = self._early, b""
            self._run(self.machine.receive_data(early))

    def _run(self, actions) -> None:
        """Carry out a machine's actions, in order."""
        for action in actions:
            kind = type(action)
            if kind is Send:
                self._write(action.data)
            elif kind is ArmTimer:
                self.arm_timeout(action.seconds)
            elif kind is DisarmTimer:
                self.disarm_timeout()
            elif kind is Log:
                self._log(action.level, action.message, action.action or "")
            elif kind is Close:
                self._close(quiet=action.timed_out)
                return
            elif kind is StartTLS:
                self._start_tls()
            elif kind is AuthRequest:
                self._auth_task = self.loop.create_task(self._authenticate(action))
            elif kind is ConnectBackend:
                self.ctx.upstream = action.upstream
                self._connect_backend(action)
        if self.phase == PRE_AUTH:
            self._resume_input()

    def _resume_input(self) -> None:
        """Read again if the machine wants input; with TLS, first what OpenSSL holds.

        Nothing to decrypt is the common case (a session waiting for its client), and
        then the machine's command buffer is not even allocated.
        """
        tls = self.tls
        if tls is not None and not self._pumping and tls.has_input():
            self._pumping = True
            try:
                self._tls_to_machine()
            except TLSClosed:
                self._client_closed()
            except TLSError as exc:
                self._log(exc.level, str(exc))
                self._close(quiet=True)
            finally:
                self._pumping = False
        self._update_reading()

    # -- timers ---------------------------------------------------------------------------

    def timeout_expired(self) -> None:
        if self._tls_closing:  # the client's close_notify did not come in time
            self.transport.close()
            return
        if self._closed:
            return
        phase = self.phase
        if phase == PRE_AUTH:
            self._run(self._active_machine().timer_expired())
        elif phase == RELAY:
            self._log("info", "client timed out %s" % TIMED_OUT, "proxying")
            self._close(quiet=True)
        else:
            # PROXY header, TLS handshake: nginx closes without a word
            self._log("info", "client timed out %s" % TIMED_OUT)
            self._close(quiet=True)

    def _touch(self) -> None:
        """A client-side event in the relay: proxy_timeout starts again (SPEC §9.6)."""
        self.arm_timeout(self.runtime.config.proxy_timeout)

    # -- authentication --------------------------------------------------------------------

    def _auth_facts(self, request: AuthRequest) -> AuthFacts:
        ssl = None
        if self.tls is not None:
            config = self.runtime.config
            if config.ssl_verify_client != "off":
                cert = self.tls.client_certificate()
                ssl = SSLFacts(
                    self.tls.protocol, self.tls.cipher, cert.verify, cert.subject, cert.issuer,
                    cert.serial, cert.fingerprint,
                    cert.pem if config.auth_http_pass_client_cert else None)
            else:
                ssl = SSLFacts(self.tls.protocol, self.tls.cipher)
        return AuthFacts(
            protocol=request.protocol, method=request.method, login=request.login,
            password=request.password, login_attempt=request.login_attempt,
            client_ip=self.client_address, salt=request.salt,
            client_host=self.client_host or None,
            proxy_protocol=self.proxy_addresses, smtp_helo=request.smtp_helo,
            smtp_from=request.smtp_from, smtp_to=request.smtp_to, ssl=ssl)

    async def _authenticate(self, request: AuthRequest) -> None:
        self.ctx.login = request.login
        try:
            result = await self.runtime.authenticate(self._auth_facts(request), self._log_auth)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an embedder's callable failed: never a crashed worker
            self._log("error", "auth callable failed: %s" % type(exc).__name__)
            result = AuthInternalError()
        if self._closed:
            return
        self._run(self.machine.auth_result(result))
        self.ctx.login = self.machine.login

    def _log_auth(self, level: str, message: str) -> None:
        self._log(level, message, "in http auth state")

    # -- backend ------------------------------------------------------------------------------

    def _connect_backend(self, target: ConnectBackend) -> None:
        from mailgate.proxy.backend import BackendSession

        self.phase = BACKEND
        self.ctx.login = self.machine.login
        self._update_reading()
        self.backend = BackendSession(self, target)
        self.backend.start()

    def backend_actions(self, actions) -> None:
        """Carry out the backend login machine's actions."""
        backend = self.backend
        for action in actions:
            kind = type(action)
            if kind is SendUpstream:
                backend.write(action.data)
            elif kind is ArmTimer:
                backend.arm_timeout(action.seconds)
            elif kind is DisarmTimer:
                backend.cancel_timeout()
            elif kind is Log:
                self._log(action.level, action.message, action.action or "")
            elif kind is LoginDone:
                self._start_relay(action)
            elif kind is LoginFailed:
                self._write(action.to_client)
                backend.close()
                self._close()

    def proxy_protocol_header(self, mode: str) -> bytes:
        """The PROXY header for the backend (``proxy_protocol on|v2``): the client as
        realip made it, the accepting socket as the local side, and for v2 the TLS facts."""
        if self.unix:
            client = local = self.transport.get_extra_info("sockname") or ""
        else:
            client = (self.client_address, self.client_port)
            local = self.transport.get_extra_info("sockname")[:2]
        facts = None
        tls = self.tls
        if mode == "v2" and tls is not None:
            sig_alg, key_alg = tls.server_certificate_algorithms()
            cn = tls.peer_common_name()
            facts = proxy_protocol.TLSFacts(
                sni=tls.server_name, alpn=(tls.alpn_protocol or "").encode() or None,
                version=tls.protocol, cipher=tls.cipher, cn=cn, has_cert=cn is not None,
                verify_result=tls.verify_result, resumed=tls.session_reused,
                sig_alg=sig_alg, key_alg=key_alg)
        return proxy_protocol.outbound_header(mode, client, local, facts)

    # -- relay ---------------------------------------------------------------------------------

    def _start_relay(self, done: LoginDone) -> None:
        # relayed data may outrun the client: pause the backend beyond a few buffers
        self.transport.set_write_buffer_limits(high=self.runtime.config.proxy_buffer * 4)
        self.phase = RELAY
        self._touch()
        self.backend.start_relay(done.buffer)
        self._relay_to_backend()
        if self.tls is not None:
            self._tls_input()
        self._update_reading()

    def _relay_to_backend(self) -> None:
        """Client bytes (plaintext) from the client relay buffer to the backend."""
        buffer = self.machine.buffer
        backend = self.backend
        self._touch()
        while True:
            if len(buffer):
                backend.write(buffer.readable())
                buffer.consume(len(buffer))
            if self.tls is None or self._peer_paused:
                break
            n = buffer.fill_from(self.tls.recv_into)
            if not n:
                break
        self._update_reading()

    def write_from_backend(self, data) -> None:
        """Backend bytes to the client (encrypted when TLS is on)."""
        self._write(data)

    def _relay_client_eof(self) -> None:
        self._log("info", "proxied session done", "")
        self._close()

    def backend_closed(self) -> None:
        """The backend ended the relay (EOF or error)."""
        if self.phase == RELAY:
            self._log("info", "proxied session done", "")
            self._close()

    def peer_paused(self, paused: bool) -> None:
        """The backend's transport is full (True) or drained (False)."""
        self._peer_paused = paused
        if not paused and self.tls is not None and self.phase == RELAY:
            self._relay_to_backend()
        self._update_reading()

    # -- output, reading state, closing -----------------------------------------------------------

    def _write(self, data) -> None:
        if self._closed or not data:
            return
        tls = self.tls
        if tls is not None and tls.handshake_done:
            try:
                records = tls.encrypt(data)
            except TLSError as exc:
                self._log(exc.level, str(exc))
                self._close(quiet=True)
                return
            self.transport.write(records)
        else:
            self.transport.write(bytes(data))

    def _update_reading(self) -> None:
        if self._closed or self.transport is None:
            return
        phase = self.phase
        if phase in (PROXY_HEADER, HANDSHAKE):
            want = True
        elif phase == PRE_AUTH:
            want = self.machine is None or self.machine.want_read
        elif phase == RELAY:
            want = not self._peer_paused and (self.tls is not None or not self.machine.buffer.full)
        else:
            want = False
        if want != self._reading:
            self._reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def _close(self, quiet: bool = False) -> None:
        """Close after what was written is sent; TLS gets close_notify unless ``quiet``.

        As nginx, after a close_notify the peer's answer is awaited for up to
        ``TLS_SHUTDOWN_WAIT`` seconds, so that the client reads everything sent
        before it (closing with its close_notify unread would reset the connection).
        """
        if self._closed:
            return
        self._closed = True
        self.phase = CLOSING
        self.cancel_timeout()
        if self._auth_task is not None and not self._auth_task.done():
            self._auth_task.cancel()
        if self.backend is not None:
            self.backend.close()
        if self.transport is None:
            return
        if self.tls is not None:
            if quiet or self._client_eof:
                self.tls.abort()
                # what OpenSSL itself sent the peer (an alert after a failure, a
                # refused renegotiation) goes out, as through nginx's socket BIO
                self._flush_tls()
            elif self._tls_shutdown():
                self._tls_closing = True
                self.arm_timeout(TLS_SHUTDOWN_WAIT)
                self.transport.resume_reading()
                return
        self.transport.close()

    def _tls_shutdown(self) -> bool:
        """Send (or go on with) the close_notify exchange; True while waiting for the peer."""
        try:
            done = self.tls.shutdown()
        except TLSError:
            self.tls.abort()
            return False
        self._flush_tls()
        return not done

    def _tls_closing_input(self, nbytes: int) -> None:
        self.tls.feed_input(nbytes)
        if not self._tls_shutdown():
            self.cancel_timeout()
            self.transport.close()

    def shutdown(self, reason: str | None = None) -> None:
        """End the session now (fast shutdown, or a graceful one that ran out of time)."""
        if reason and self.runtime is not None:
            self._log("info", reason, "proxying" if self.phase == RELAY else None)
        self._close(quiet=True)

    def _abort(self) -> None:
        self._close(quiet=True)
        if self.transport is not None:
            self.transport.abort()

    def _finish(self) -> None:
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
            return self.backend.machine.log_action or "" if self.backend else "connecting to upstream"
        if phase == RELAY:
            return "proxying"
        return ""

    def _log(self, level: str, message: str, action: str | None = None) -> None:
        """A session line with nginx's context; ``action`` None means the current one,
        "" none at all."""
        log = self.runtime.log
        if not log.enabled(level):
            return
        if self.machine is not None:
            self.ctx.login = self.machine.login
        log.log(level, self.ctx.describe(message, self._action() if action is None else action),
                conn=self.number)
