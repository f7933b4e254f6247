"""POP3: the client-facing pre-auth machine and the backend login.

The machine is nginx's src/mail/ngx_mail_pop3_handler.c (ngx_mail_pop3_auth_state() and
its commands) with the capability lists of ngx_mail_pop3_merge_srv_conf() in
src/mail/ngx_mail_pop3_module.c; the backend login is ngx_mail_proxy_pop3_handler() in
src/mail/ngx_mail_proxy_module.c (docs/nginx-behaviour.md#pop3).

Every POP3 wire string of the proxy lives here.
"""

from __future__ import annotations

from functools import lru_cache

from mailgate.protocol import sasl
from mailgate.protocol._backend import _BAD, _OK, SASL_COMMAND, BackendLogin
from mailgate.protocol._codes import (
    CONFIG_ENCODING,
    INVALID,
    OK,
    POP3_APOP,
    POP3_AUTH,
    POP3_CAPA,
    POP3_NOOP,
    POP3_PASS,
    POP3_QUIT,
    POP3_STLS,
    POP3_USER,
)
from mailgate.protocol._server import DONE, START, ServerMachine

GREETING = b"+OK POP3 ready\r\n"
OK_REPLY = b"+OK\r\n"
BAD_COMMAND = b"-ERR invalid command\r\n"
INTERNAL_ERROR = b"-ERR internal server error\r\n"
CERT_ERROR = b"-ERR SSL certificate error\r\n"
NO_CERT = b"-ERR No required SSL certificate\r\n"
# POP3's command buffer has no directive: ngx_mail_pop3_init_protocol() allocates 128
# bytes (src/mail/ngx_mail_pop3_handler.c); a mechanism offered may need more
CLIENT_BUFFER = 128

USER_STATE = "user"


@lru_cache(maxsize=256)
def _capabilities(capabilities: tuple[str, ...], methods: frozenset[str]
                  ) -> tuple[bytes, bytes, bytes, bytes]:
    caps = [c.encode(*CONFIG_ENCODING) for c in capabilities]
    names = [m.name for m in sasl.offered("pop3", methods)]
    head = b"+OK Capability list follows\r\n"
    body = b"".join(c + b"\r\n" for c in caps)
    sasl_line = b" ".join([b"SASL"] + names) + b"\r\n"
    base = head + body + sasl_line + b".\r\n"
    starttls_on = head + body + sasl_line + b"STLS\r\n.\r\n"
    only = (head + b"".join(c + b"\r\n" for c in caps if c.upper() != b"USER")
            + b"STLS\r\n.\r\n")
    methods_list = (b"+OK methods supported:\r\n"
                    + b"".join(n + b"\r\n" for n in names) + b".\r\n")
    return base, starttls_on, only, methods_list


@lru_cache(maxsize=256)
def _salted_greeting(methods: frozenset[str]) -> bool:
    """Whether the greeting carries the salt: a method enabled works on it (APOP,
    CRAM-MD5), ngx_mail_pop3_init_session() in src/mail/ngx_mail_pop3_handler.c."""
    return any(m.salted and m.enabled("pop3", methods) for m in sasl.METHODS)


def capability_lists(config) -> tuple[bytes, bytes, bytes, bytes]:
    """CAPA (base, ``starttls on``, ``starttls only``) and the AUTH method list."""
    return _capabilities(tuple(config.pop3_capabilities), frozenset(config.pop3_auth))


class Pop3Server(ServerMachine):
    """Client-facing POP3 before authentication (``ngx_mail_pop3_handler.c``)."""

    protocol = "pop3"
    auth_directive = "pop3_auth"
    reader_name = "Pop3Reader"
    sasl_prompt = b"+ "
    secret_commands = frozenset({b"PASS", b"APOP", b"AUTH"})
    secret_codes = frozenset({POP3_PASS, POP3_APOP, POP3_AUTH})
    auth_command = POP3_AUTH
    INTERNAL_ERROR = INTERNAL_ERROR
    CERT_ERROR = CERT_ERROR
    NO_CERT = NO_CERT

    def _buffer_size(self) -> int:
        return CLIENT_BUFFER

    @staticmethod
    def _salted(config) -> bool:
        return _salted_greeting(frozenset(config.pop3_auth))

    @classmethod
    def fixed_greeting(cls, config) -> bytes | None:
        return None if cls._salted(config) else GREETING

    def _greeting(self) -> bytes:
        if self._salted(self.config):
            self.salt = self._make_salt()
            return GREETING[:-2] + b" " + self.salt
        return GREETING

    def _handle(self, rc: int) -> None:
        self._reply = OK_REPLY
        if rc == OK:
            command = self.reader.command
            if self.mail_state == START:
                if command == POP3_USER:
                    rc = self._user()
                elif command == POP3_CAPA:
                    self._reply = self._capa(stls=True)
                elif command == POP3_APOP:
                    rc = self._apop()
                elif command == POP3_AUTH:
                    rc = self._auth()
                elif command == POP3_QUIT:
                    self.quit = True
                elif command == POP3_STLS:
                    rc = self._stls()
                elif command != POP3_NOOP:
                    rc = INVALID
            elif self.mail_state == USER_STATE:
                if command == POP3_PASS:
                    rc = self._pass()
                elif command == POP3_CAPA:
                    self._reply = self._capa(stls=False)
                elif command == POP3_QUIT:
                    self.quit = True
                elif command != POP3_NOOP:
                    rc = INVALID
            else:
                rc = self._sasl_continue()

        if self._conclude(rc, BAD_COMMAND):
            return
        self.buffer.reset_if_drained()
        self._send(self._reply)

    def _user(self) -> int:
        args = self.reader.args
        if self._starttls_only() or len(args) != 1:
            return INVALID
        self.login = args[0]
        self.mail_state = USER_STATE
        return OK

    def _pass(self) -> int:
        args = self.reader.args
        if len(args) != 1:
            return INVALID
        self.auth_method = sasl.PLAIN.auth_method
        self.password = args[0]
        return DONE

    def _apop(self) -> int:
        args = self.reader.args
        if (self._starttls_only() or len(args) != 2
                or not sasl.APOP.enabled(self.protocol, self.methods)):
            return INVALID
        self.auth_method = sasl.APOP.auth_method
        self.login = args[0]
        self.password = args[1]
        return DONE

    def _auth(self) -> int:
        if self._starttls_only():
            return INVALID
        if not self.reader.args:
            self._reply = capability_lists(self.config)[3]
            self.reader.reset_state()
            return OK
        return self._sasl_begin(self.reader.args)

    def _capa(self, stls: bool) -> bytes:
        base, starttls_on, starttls_only, _ = capability_lists(self.config)
        if stls and not self.tls:
            if self.config.starttls == "on":
                return starttls_on
            if self.config.starttls == "only":
                return starttls_only
        return base

    def _stls(self) -> int:
        if not self._starttls_allowed():
            return INVALID
        self._starttls = True
        return OK

    def _failure_line(self, result) -> bytes:
        return b"-ERR " + result.message + b"\r\n"

    def _make_backend(self, endpoints) -> "Pop3BackendLogin":
        xclient = None
        if self.config.proxy_pop3_xclient and endpoints is not None:
            xclient = xclient_line(endpoints)
        return Pop3BackendLogin(self.config, login=self.login,
                                password=self.backend_password,
                                method=sasl.by_auth_method(self.auth_method),
                                xclient=xclient, implementation=self.impl.name)


def xclient_line(endpoints) -> bytes:
    """``XCLIENT ADDR=… PORT=…``: Dovecot's pop3-login takes the client's address and
    port from a proxy in its login_trusted_networks (plain addresses, IPv6 too)."""
    return b"XCLIENT ADDR=%s PORT=%d\r\n" % (endpoints.client_ip.encode(),
                                             endpoints.client_port)


class Pop3BackendLogin(BackendLogin):
    """Log in to a POP3 backend with USER and PASS (ngx_mail_proxy_pop3_handler() in
    src/mail/ngx_mail_proxy_module.c), or with AUTH and the client's mechanism when the
    method replays it (OAuth 2.0)."""

    protocol = "pop3"

    INTERNAL_ERROR = INTERNAL_ERROR

    def __init__(self, config, *, login: bytes, password: bytes,
                 method: sasl.Method | None = None, xclient: bytes | None = None,
                 implementation: str | None = None) -> None:
        super().__init__(config, implementation=implementation)
        self._login = login
        self._password = password
        # proxy_pop3_xclient: the XCLIENT line sent before the login
        self._xclient = xclient
        if method is not None and method.replay == sasl.SASL_REPLAY:
            self.mechanism = method

    def _check(self, reply: bytes) -> tuple[int, int]:
        final = (_OK if reply.startswith(b"+OK") else _BAD), 0
        if self.mechanism is not None and self.state not in ("start", "starttls", "xclient"):
            return self._check_sasl(reply, b"+ ", final)
        return final

    def _step(self) -> None:
        if self.state == "start":
            if self.starttls:
                self._send_line(b"STLS\r\n", "starttls", "sending STLS command to upstream")
            else:
                self._after_tls()
        elif self.state == "starttls":
            self._start_tls()
        elif self.state == "xclient":
            self._login_command()
        elif self.state == SASL_COMMAND:
            self._send_sasl_response()
        elif self.state == "user":
            self._send_line(b"PASS " + self._password + b"\r\n", "passwd",
                            "sending password to upstream")
        else:
            self._finish()

    def _after_tls(self) -> None:
        # RFC 2595 section 4: capabilities from before STLS are forgotten; none is used.
        # XCLIENT (proxy_pop3_xclient) goes first, over TLS when there is TLS
        if self._xclient is not None:
            self._send_line(self._xclient, "xclient", "sending XCLIENT to upstream")
        else:
            self._login_command()

    def _login_command(self) -> None:
        if self.mechanism is not None:
            self._send_line(b"AUTH " + self.mechanism.name + b"\r\n", SASL_COMMAND,
                            "sending AUTH command to upstream")
        else:
            self._send_line(b"USER " + self._login + b"\r\n", "user",
                            "sending user name to upstream")
