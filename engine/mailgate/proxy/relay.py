"""The backend and relay phases of a client session.

As nginx's ngx_mail_proxy_module.c works on the one ngx_mail_session_t, this is a
part of ``ClientSession`` kept apart by concern (a mixin: no object of its own per
connection).  It makes the ``BackendSession`` for the machine's ``ConnectBackend``,
serves as its ``ClientSide`` (the login's outcome, relayed bytes, a full or closed
backend), and moves the client's bytes to the backend in the relay.
"""

from __future__ import annotations

from mailgate.protocol import Endpoints
from mailgate.protocol.events import ConnectBackend
from mailgate.proxy import proxy_protocol
from mailgate.proxy.backend import BackendSession
from mailgate.proxy.phases import BACKEND, RELAY

__all__ = ["RelayPhase"]


class RelayPhase:
    """Mixin of ``ClientSession``: the backend side's partner, and the relay."""

    __slots__ = ()

    def _connect_backend(self, target: ConnectBackend) -> None:
        self.ctx.upstream = target.upstream
        self.phase = BACKEND
        self.ctx.login = self.machine.login
        self._update_reading()
        runtime = self.runtime
        config = runtime.config
        header = b""
        if config.proxy_protocol != "off":
            header = self._backend_proxy_header(config.proxy_protocol)
        endpoints = None
        if not self.unix:
            local = self.transport.get_extra_info("sockname")
            endpoints = Endpoints(self.client_address, self.client_port, local[0], local[1])
        login = self.machine.backend_login(endpoints)
        if runtime.log.debug:
            login.debug = True
            self.log("debug", "mail proxy connect to upstream: %s" % target.upstream)
        self.backend = BackendSession(self, target, login, config,
                                      self._wheel, runtime.stats, header,
                                      runtime.backend_tls)
        self.backend.start()

    def _backend_proxy_header(self, mode: str) -> bytes:
        """The PROXY header for the backend: the client as realip made it, the accepting
        socket as the local side, and for v2 the TLS facts."""
        if self.unix:
            client = local = self.transport.get_extra_info("sockname") or ""
        else:
            client = (self.client_address, self.client_port)
            local = self.transport.get_extra_info("sockname")[:2]
        return proxy_protocol.backend_header(mode, client, local, self.tls)

    def login_done(self, first: bytes) -> None:
        """The backend took the login: ``first`` to the client, then the relay."""
        self.upstream_connect_time = self.backend.connect_time
        # relayed data may outrun the client: pause the backend beyond a few buffers
        self.transport.set_write_buffer_limits(high=self.runtime.config.proxy_buffer * 4)
        self.phase = RELAY
        self.outcome = "proxied"
        self.runtime.stats.relay_started(self.runtime.config.protocol)
        if self.runtime.log.debug:
            self.log("debug", "mail proxy relay start")
        self._touch()
        self._write(first)
        self._relay_to_backend()
        if self.tls is not None:
            self._tls_input()
        self._update_reading()

    def login_failed(self, reply: bytes) -> None:
        """The backend login failed: ``reply`` (if any) to the client, and close."""
        self.outcome = "backend_error"
        self._write(reply)
        self._close()

    def deliver(self, data) -> None:
        """Backend bytes to the client (encrypted when TLS is on)."""
        self._write(data)

    def backend_closed(self) -> None:
        """The backend ended the relay (EOF or error)."""
        if self.phase == RELAY:
            self.close_reason = "backend_closed"
            self.log("info", "proxied session done", "")
            self._close()

    def backend_paused(self, paused: bool) -> None:
        """The backend's transport is full (True) or drained (False)."""
        self._backend_paused = paused
        if not paused and self.tls is not None and self.phase == RELAY:
            self._relay_to_backend()
        self._update_reading()

    def _relay_to_backend(self) -> None:
        """Client bytes (plaintext) from the client relay buffer to the backend."""
        buffer = self.machine.buffer
        backend = self.backend
        self._touch()
        while True:
            if len(buffer):
                backend.relay(buffer.readable())
                buffer.consume(len(buffer))
            if self.tls is None or self._backend_paused:
                break
            n = buffer.fill_from(self.tls.recv_into)
            if not n:
                break
        self._update_reading()

    def _relay_client_eof(self) -> None:
        self.close_reason = "client_closed"
        self.log("info", "proxied session done", "")
        self._close()

    def _touch(self) -> None:
        """A client-side event in the relay: proxy_timeout starts again
        (ngx_mail_proxy_handler())."""
        self.arm_timeout(self.runtime.config.proxy_timeout)
