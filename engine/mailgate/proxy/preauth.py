"""The phases of a client session before the auth request: the PROXY protocol header,
TLS (implicit, or after STARTTLS) and the client certificate policy, the SMTP
client's name, the greeting, and the commands read by the machine.

As nginx's ngx_mail_handler.c (ngx_mail_init_connection(), ngx_mail_ssl_init_connection(),
ngx_mail_proxy_protocol_handler()) and the protocols' init_session handlers work on
the one ngx_mail_session_t, this is a part of ``ClientSession`` kept apart by
concern (a mixin: no object of its own per connection).
"""

from __future__ import annotations

from mailgate.inet import TEMPUNAVAIL, UNAVAILABLE
from mailgate.protocol import server_for
from mailgate.protocol.events import StartTLS
from mailgate.proxy import proxy_protocol
from mailgate.proxy.phases import CLOSING, HANDSHAKE, PRE_AUTH, RELAY, RESOLVING
from mailgate.proxy.realip import realip_for
from mailgate.proxy.tls_transport import DISCARD
from mailgate.tls import TLSClosed, TLSError, TLSStream

__all__ = ["PreAuthPhase"]


class PreAuthPhase:
    """Mixin of ``ClientSession``: from the accepted connection to the auth request."""

    __slots__ = ()

    # -- the PROXY protocol header ---------------------------------------------------

    def _proxy_header(self) -> None:
        data = bytes(self._header[: self._header_length])
        header = proxy_protocol.parse_first_read(data)
        if isinstance(header, proxy_protocol.ProxyHeaderError):
            if header.message is not None:
                self.log("error", header.message)
            self.outcome = "rejected"
            self._close(quiet=True)
            return
        self.proxy_addresses = header.addresses
        if self.runtime.log.debug and header.addresses is not None:
            a = header.addresses  # ngx_proxy_protocol_read()'s line
            self.log("debug", "PROXY protocol src: %s %d, dst: %s %d" % (
                a.source_address, a.source_port, a.destination_address, a.destination_port))
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
            self._begin_tls(rest)
            return
        self._early = rest
        self._begin()

    # -- TLS (TLSTransport's hooks) -------------------------------------------------

    def _begin_tls(self, rest: bytes = b"") -> None:
        self.phase = HANDSHAKE
        if self.runtime.log.debug:
            self.log("debug", "mail state: %s" % HANDSHAKE)
        if self.tls_implicit:
            self.arm_timeout(self.runtime.config.timeout)
        self._start_tls(TLSStream(self.runtime.tls, log=self.log), rest)
        if not self.tls_implicit:
            self._update_reading()  # STARTTLS: the machine had stopped reading

    def _tls_established(self) -> bool:
        tls = self.tls
        self.runtime.stats.tls_handshake(tls.protocol, tls.session_reused)
        if self.runtime.log.debug:  # ngx_ssl_handshake()'s lines
            self.log("debug", 'SSL: %s, cipher: "%s"' % (tls.protocol, tls.cipher))
            if tls.session_reused:
                self.log("debug", "SSL reused session")
        check = tls.check_client_certificate()
        if self.tls_implicit:
            # the handshake's timer goes on until the greeting's replaces it
            if not check.ok:
                self._certificate_rejected(check, self._make_machine())
            else:
                self._begin()
        else:
            self.phase = PRE_AUTH
            self.ctx.starttls = True
            if not check.ok:
                self._certificate_rejected(check, self.machine)
            else:
                self._run(self.machine.tls_established())
        # the machine has read on what came with the handshake, unless the session ended
        return self.phase == CLOSING

    def _certificate_rejected(self, check, machine) -> None:
        self.log("info", check.message)
        self.outcome = "rejected"
        self._run(machine.certificate_rejected(check.verdict.value == "no_cert"))

    def _tls_readable(self) -> None:
        phase = self.phase
        if phase == PRE_AUTH:
            self._resume_input()
        elif phase == RELAY:
            self._relay_to_backend()
        elif phase == CLOSING:
            self.tls.recv_into(DISCARD)

    def _tls_peer_closed(self) -> None:
        """The client's close_notify or end of input."""
        if self.phase == PRE_AUTH:
            if self.machine is None:
                self._close()  # what a greeted machine does at its client's end: close
            else:
                self._run(self.machine.eof_received())
        elif self.phase == RELAY:
            self._relay_client_eof()
        elif self.phase == HANDSHAKE:
            self.log("info", "peer closed connection in SSL handshake")
            self._close(quiet=True)
        else:
            self._close(quiet=True)

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

    # -- the protocol machine -----------------------------------------------------------

    def _make_machine(self, greeted: bool = False):
        config = self.runtime.config
        if config.protocol == "smtp":
            # without a resolver (or until it answers) the SMTP client is [UNAVAILABLE];
            # a UNIX-socket client is [TEMPUNAVAIL] (ngx_mail_smtp_init_session())
            self.client_host = TEMPUNAVAIL if self.unix else UNAVAILABLE
            self.machine = server_for(config, tls=self.tls is not None,
                                      client_addr=self.client_address,
                                      client_host=self.client_host, greeted=greeted)
        else:
            self.machine = server_for(config, tls=self.tls is not None, greeted=greeted)
        if self.runtime.log.debug:
            self.machine.debug = True
        return self.machine

    def _active_machine(self):
        """The machine, made now if the session greeted with the server's fixed start."""
        return self.machine or self._make_machine(greeted=True)

    def _begin(self) -> None:
        runtime = self.runtime
        if runtime.config.protocol == "smtp" and runtime.resolver is not None and not self.unix:
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
            self.log(line.level, line.message, line.action or "")
        self.client_host = name.host
        self.machine.client_host = self.client_host
        self._greet()

    def _greet(self) -> None:
        self.phase = PRE_AUTH
        if self.runtime.log.debug:
            self.log("debug", "mail state: %s" % PRE_AUTH)
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

    def _starttls(self, action: StartTLS) -> None:
        self._begin_tls()

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
                self._tls_peer_closed()
            except TLSError as exc:
                self.log(exc.level, str(exc))
                self._close(quiet=True)
            finally:
                self._pumping = False
        self._update_reading()
