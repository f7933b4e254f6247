"""SMTP: the client-facing pre-auth machine and the backend login.

The machine is nginx's src/mail/ngx_mail_smtp_handler.c (ngx_mail_smtp_auth_state() and
its commands) with the EHLO lines of ngx_mail_smtp_merge_srv_conf() in
src/mail/ngx_mail_smtp_module.c; the backend login is ngx_mail_proxy_smtp_handler() in
src/mail/ngx_mail_proxy_module.c (docs/nginx-behaviour.md#smtp).

Every SMTP wire string of the proxy lives here.
"""

from __future__ import annotations

import re
from functools import lru_cache

from mailgate.inet import UNAVAILABLE, peer_ip
from mailgate.protocol import sasl
from mailgate.protocol._backend import (
    _AGAIN,
    _BAD,
    _OK,
    SASL_COMMAND,
    SASL_ERROR,
    SASL_RESPONSE,
    BackendLogin,
)
from mailgate.protocol._codes import (
    CONFIG_ENCODING,
    INVALID,
    OK,
    SMTP_AUTH,
    SMTP_EHLO,
    SMTP_HELO,
    SMTP_MAIL,
    SMTP_NOOP,
    SMTP_QUIT,
    SMTP_RCPT,
    SMTP_RSET,
    SMTP_STARTTLS,
)
from mailgate.protocol._server import (
    AUTH,
    CLOSED,
    DONE,
    GREETING_DELAY,
    START,
    ServerMachine,
)
from mailgate.protocol.events import ArmTimer, Close, Log

OK_REPLY = b"250 2.0.0 OK\r\n"
BYE = b"221 2.0.0 Bye\r\n"
START_TLS = b"220 2.0.0 Start TLS\r\n"
INVALID_COMMAND = b"500 5.5.1 Invalid command\r\n"
INVALID_PIPELINING = b"503 5.5.0 Improper use of SMTP command pipelining\r\n"
INVALID_ARGUMENT = b"501 5.5.4 Invalid argument\r\n"
AUTH_REQUIRED = b"530 5.7.1 Authentication required\r\n"
BAD_SEQUENCE = b"503 5.5.1 Bad sequence of commands\r\n"
AUTH_OK = b"235 2.0.0 OK\r\n"
DEFAULT_ERROR_CODE = b"535 5.7.0"
INTERNAL_ERROR = b"451 4.3.2 Internal server error\r\n"
CERT_ERROR = b"421 4.7.1 SSL certificate error\r\n"
NO_CERT = b"421 4.7.1 No required SSL certificate\r\n"


def _reply_lines(items: list[bytes]) -> bytes:
    """``250-a`` CRLF ... ``250 last`` CRLF."""
    return b"".join(b"250-" + i + b"\r\n" for i in items[:-1]) + b"250 " + items[-1] + b"\r\n"


@lru_cache(maxsize=256)
def _capabilities(server_name: bytes, capabilities: tuple[str, ...],
                  methods: frozenset[str]) -> tuple[bytes, bytes, bytes]:
    items = [server_name] + [c.encode(*CONFIG_ENCODING) for c in capabilities]
    names = [m.name for m in sasl.offered("smtp", methods)]
    auth = [b" ".join([b"AUTH"] + names)] if names else []
    return (_reply_lines(items + auth),
            _reply_lines(items + auth + [b"STARTTLS"]),
            _reply_lines(items + [b"STARTTLS"]))


def ehlo_replies(config) -> tuple[bytes, bytes, bytes]:
    """The EHLO replies (base, ``starttls on``, ``starttls only``) of a server."""
    return _capabilities(config.server_name.encode(*CONFIG_ENCODING), tuple(config.smtp_capabilities),
                         frozenset(config.smtp_auth))


class SmtpServer(ServerMachine):
    """Client-facing SMTP before authentication (``ngx_mail_smtp_handler.c``).

    ``client_addr`` (the client IP as text, after realip) and ``client_host`` (the
    name from the reverse/forward DNS check, or ``[UNAVAILABLE]``/``[TEMPUNAVAIL]``,
    as text) feed XCLIENT.  Start the
    machine once DNS is done; ``smtp_greeting_delay`` is handled here as a timer.
    """

    protocol = "smtp"
    auth_directive = "smtp_auth"
    reader_name = "SmtpReader"
    sasl_prompt = b"334 "
    secret_commands = frozenset({b"AUTH"})
    secret_codes = frozenset({SMTP_AUTH})
    auth_command = SMTP_AUTH
    INTERNAL_ERROR = INTERNAL_ERROR
    CERT_ERROR = CERT_ERROR
    NO_CERT = NO_CERT

    def __init__(self, config, *, tls: bool = False, client_addr: str = "",
                 client_host: str = UNAVAILABLE, greeted: bool = False,
                 implementation: str | None = None, rand=None, now=None) -> None:
        super().__init__(config, tls=tls, greeted=greeted, implementation=implementation,
                         rand=rand, now=now)
        self.client_addr = client_addr
        self.client_host = client_host
        self.esmtp = False
        self.helo: bytes | None = None
        self.mail_from: bytes | None = None
        self.rcpt_to: bytes | None = None

    def _buffer_size(self) -> int:
        return self.config.smtp_client_buffer

    def _greeting(self) -> bytes:
        return b"220 " + self._server_name + b" ESMTP ready\r\n"

    def start(self) -> list:
        """Greet the client now, or after ``smtp_greeting_delay``."""
        delay = self.config.smtp_greeting_delay
        if delay:
            self.phase = GREETING_DELAY
            self.log_action = "in delay pipelining state"
            self._out.append(ArmTimer(delay))
            return self._flush()
        return super().start()

    def _send_greeting(self) -> None:
        self.phase = AUTH
        self._greet()

    def _reject_before_greeting(self) -> None:
        self._log("info", 'client was rejected before greeting: "%s"'
                  % self._loggable(self.buffer.contents(), mark_line_ends=True))
        self.buffer.reset()
        self._send(INVALID_PIPELINING)
        self.phase = CLOSED
        self._out.append(Close())

    def _handle(self, rc: int) -> None:
        self._reply = OK_REPLY
        if rc == OK:
            if self.mail_state == START:
                command = self.reader.command
                if command == SMTP_HELO or command == SMTP_EHLO:
                    rc = self._helo(command)
                elif command == SMTP_AUTH:
                    rc = self._auth()
                elif command == SMTP_QUIT:
                    self.quit = True
                    self._reply = BYE
                elif command == SMTP_MAIL:
                    rc = self._mail()
                elif command == SMTP_RCPT:
                    rc = self._rcpt()
                elif command == SMTP_RSET:
                    self.mail_from = self.rcpt_to = None
                elif command == SMTP_STARTTLS:
                    rc = self._starttls_command()
                    self._reply = START_TLS
                elif command != SMTP_NOOP:
                    # VRFY, EXPN, HELP: recognized, always refused, not counted
                    rc = INVALID
            else:
                rc = self._sasl_continue()

        if self._conclude(rc, INVALID_COMMAND):
            return
        self.buffer.reset_if_drained()
        self._send(self._reply)

    def _helo(self, command: int) -> int:
        args = self.reader.args
        if len(args) != 1:
            self._reply = INVALID_ARGUMENT
            self.reader.reset_state()
            return OK
        self.helo = args[0]
        self.mail_from = self.rcpt_to = None
        if command == SMTP_HELO:
            self._reply = b"250 " + self._server_name + b"\r\n"
            return OK
        self.esmtp = True
        base, starttls_on, starttls_only = ehlo_replies(self.config)
        self._reply = base
        if not self.tls:
            if self.config.starttls == "on":
                self._reply = starttls_on
            elif self.config.starttls == "only":
                self._reply = starttls_only
        return OK

    def _auth(self) -> int:
        if self._starttls_only():
            return INVALID
        if not self.reader.args:
            self._reply = INVALID_ARGUMENT
            self.reader.reset_state()
            return OK
        return self._sasl_begin(self.reader.args)

    def _mail(self) -> int:
        if not sasl.NONE.enabled(self.protocol, self.methods):
            self._log("info", 'client was rejected: "%s"'
                      % self._loggable(self.buffer.contents(), mark_line_ends=True))
            self._reply = AUTH_REQUIRED
            return OK
        if self.mail_from is not None:
            self._reply = BAD_SEQUENCE
            return OK
        if not self.reader.args:
            self._reply = INVALID_ARGUMENT
            return OK
        self.mail_from = self.reader.command_text()
        # stale credentials must not reach XCLIENT or Auth-User (nginx 1.29.1)
        self.login = b""
        self.password = b""
        return OK

    def _rcpt(self) -> int:
        if self.mail_from is None:
            self._reply = BAD_SEQUENCE
            return OK
        if not self.reader.args:
            self._reply = INVALID_ARGUMENT
            return OK
        self.rcpt_to = self.reader.command_text()
        self.auth_method = sasl.NONE.auth_method
        return DONE

    def _starttls_command(self) -> int:
        if not self._starttls_allowed():
            return INVALID
        # RFC 3207: forget what the client said before STARTTLS (not esmtp)
        self.helo = self.mail_from = self.rcpt_to = None
        self._starttls = True
        return OK

    def _request_extra(self) -> dict:
        return {"smtp_helo": self.helo, "smtp_from": self.mail_from,
                "smtp_to": self.rcpt_to}

    def _failure_line(self, result) -> bytes:
        return (result.error_code or DEFAULT_ERROR_CODE) + b" " + result.message + b"\r\n"

    def _make_backend(self, endpoints) -> "SmtpBackendLogin":
        return SmtpBackendLogin(
            self.config, login=self.login, password=self.backend_password,
            auth_method=self.auth_method, esmtp=self.esmtp, helo=self.helo,
            mail_from=self.mail_from, rcpt_to=self.rcpt_to, client_addr=self.client_addr,
            client_host=self.client_host, implementation=self.impl.name)


# the STARTTLS line of an EHLO reply (RFC 3207 section 4)
_STARTTLS_KEYWORD = re.compile(rb"^250[ -]STARTTLS[ \t]*\r?$", re.M | re.I)


def xtext(data: bytes) -> bytes:
    """RFC 1891 xtext as nginx 1.29.2+ encodes the XCLIENT login."""
    out = bytearray()
    for ch in data:
        if ch <= 0x20 or ch >= 0x7F or ch == 0x2B or ch == 0x3D:
            out += b"+%02X" % ch
        else:
            out.append(ch)
    return bytes(out)


def xclient_line(client_addr: str, login: bytes, host: str) -> bytes:
    """``XCLIENT ADDR=… [LOGIN=…] NAME=…`` CRLF (``login`` empty: no LOGIN=)."""
    address = peer_ip(client_addr)
    ipv6 = address is not None and address.version == 6
    line = b"XCLIENT ADDR=" + (b"IPV6:" if ipv6 else b"") + client_addr.encode()
    if login:
        line += b" LOGIN=" + xtext(login)
    return line + b" NAME=" + host.encode() + b"\r\n"


class SmtpBackendLogin(BackendLogin):
    """Log in to an SMTP backend: EHLO/HELO, XCLIENT, AUTH PLAIN (or the client's OAuth
    mechanism replayed) or MAIL/RCPT."""

    protocol = "smtp"

    INTERNAL_ERROR = INTERNAL_ERROR

    def __init__(self, config, *, login: bytes, password: bytes | None, auth_method: str,
                 esmtp: bool, helo: bytes | None, mail_from: bytes | None,
                 rcpt_to: bytes | None, client_addr: str, client_host: str,
                 implementation: str | None = None) -> None:
        super().__init__(config, implementation=implementation)
        self._login = login
        self._password = password
        method = sasl.by_auth_method(auth_method)
        # the client's MAIL FROM and RCPT TO go to the backend (smtp_auth none), or a login
        self._relay = method is not None and method.replay == sasl.RELAY
        if method is not None and method.replay == sasl.SASL_REPLAY:
            self.mechanism = method
        self._esmtp = esmtp
        self._helo = helo
        self._from = mail_from
        self._to = rcpt_to
        self._client_addr = client_addr
        self._client_host = client_host

    def _check(self, reply: bytes) -> tuple[int, int]:
        if reply[3:4] == b"-":
            # multiline: wait until the last line is a final one; like nginx, look
            # for the CRLF before it from 7 bytes before the end ("CRLF 200 CRLF")
            m = reply.rfind(b"\r\n", 0, len(reply) - 5) if len(reply) >= 7 else -1
            if m <= 0 or reply[m + 5:m + 6] == b"-":
                return _AGAIN, 0
        code = reply[:3]
        state = self.state
        if state in ("start", "starttls"):
            ok = code == b"220"
        elif state == "starttls_ehlo":
            # RFC 3207 section 4: STARTTLS only when the EHLO reply announces it
            ok = code == b"250" and _STARTTLS_KEYWORD.search(reply) is not None
        elif state in ("helo", "helo_xclient", "helo_from", "helo_auth", "from"):
            ok = code == b"250"
        elif state in ("xclient", "xclient_from", "xclient_helo", "xclient_auth"):
            ok = code in (b"220", b"250")
        elif state == "auth_plain":
            ok = code == b"235"
        elif state in (SASL_COMMAND, SASL_RESPONSE, SASL_ERROR):
            return self._check_sasl(reply, b"334 ", ((_OK if code == b"235" else _BAD), 0))
        else:
            ok = True   # the RCPT reply is relayed whatever it says
        return (_OK if ok else _BAD), 0

    def _after_helo(self, prefix: str) -> str:
        if self._relay:
            return prefix + "_from"
        if self.config.proxy_smtp_auth:
            return prefix + "_auth"
        return prefix

    def _after_tls(self) -> None:
        """The login from the greeting on: first EHLO/HELO (again, after STARTTLS, as
        RFC 3207 section 4.2 asks)."""
        config = self.config
        verb = b"EHLO " if self._esmtp or config.xclient else b"HELO "
        following = "helo_xclient" if config.xclient else self._after_helo("helo")
        self._send_line(verb + config.server_name.encode(*CONFIG_ENCODING) + b"\r\n", following,
                        "sending HELO/EHLO to upstream")

    def _step(self) -> None:
        state = self.state
        config = self.config
        if state == "start":
            if self.starttls:
                self._send_line(b"EHLO " + config.server_name.encode(*CONFIG_ENCODING) + b"\r\n",
                                "starttls_ehlo", "sending HELO/EHLO to upstream")
            else:
                self._after_tls()
        elif state == "starttls_ehlo":
            self._send_line(b"STARTTLS\r\n", "starttls", "sending STARTTLS command to upstream")
        elif state == "starttls":
            self._start_tls()
        elif state == "helo_xclient":
            login = b"" if config.proxy_smtp_auth else self._login
            if self._helo:
                following = "xclient_helo"
            else:
                following = self._after_helo("xclient")
            self._send_line(xclient_line(self._client_addr, login, self._client_host),
                            following, "sending XCLIENT to upstream")
        elif state == "xclient_helo":
            verb = b"EHLO " if self._esmtp else b"HELO "
            self._send_line(verb + self._helo + b"\r\n", self._after_helo("helo"),
                            "sending client HELO/EHLO to upstream")
        elif state in ("helo_auth", "xclient_auth"):
            self.log_action = "sending AUTH to upstream"
            if self._password is None:
                self._out.append(Log("error", "no password available", self.log_action))
                self._fail(INTERNAL_ERROR)
                return
            if self.mechanism is not None:
                self._send_line(b"AUTH " + self.mechanism.name + b"\r\n", SASL_COMMAND,
                                "sending AUTH to upstream")
                return
            plain = self.impl.encode_base64(b"\0" + self._login + b"\0" + self._password)
            self._send_line(b"AUTH PLAIN " + plain + b"\r\n", "auth_plain",
                            "sending AUTH to upstream")
        elif state in ("helo_from", "xclient_from"):
            self._send_line(self._from + b"\r\n", "from", "sending MAIL FROM to upstream")
        elif state == "from":
            self._send_line(self._to + b"\r\n", "to", "sending RCPT TO to upstream")
        elif state == SASL_COMMAND:
            self._send_sasl_response()
        else:
            if not self._relay:
                # the client sees nginx's own answer to its AUTH, not the backend's
                self.buffer.replace(AUTH_OK)
            self._finish()
