"""What the three client-facing machines share: nginx's mail session core.

This is nginx's src/mail/ngx_mail_handler.c without sockets: the command buffer and
its limits, ngx_mail_read_command() (too-long lines, error counting, ``max_errors``),
the pre-auth timer budget, the STARTTLS hand-off, the SASL exchanges
(ngx_mail_auth_plain() and its siblings), the auth request (ngx_mail_auth()) and the
handling of its result (ngx_mail_auth_http_process_headers() and
ngx_mail_auth_sleep_handler() in src/mail/ngx_mail_auth_http_module.c); see
docs/nginx-behaviour.md#session-phases and the sections after it.  The protocol
modules add their parsers' handlers and wire strings.
"""

from __future__ import annotations

from typing import NamedTuple

from mailgate.log import printable
from mailgate.protocol import _impl, sasl
from mailgate.protocol._backend import Endpoints
from mailgate.protocol._codes import AGAIN, CONFIG_ENCODING, INVALID, OK
from mailgate.protocol.events import (
    ArmTimer,
    AuthFailed,
    AuthInternalError,
    AuthOK,
    AuthRequest,
    AuthRetry,
    Close,
    ConnectBackend,
    DisarmTimer,
    Log,
    Send,
    StartTLS,
)

# handler results beyond the parser's: credentials complete (nginx: NGX_DONE), and the
# answer to a failure challenge read: the failure reply is under way (nothing to send)
DONE = 10
FAILED = 11

# phases of a session before the relay
GREETING_DELAY = "greeting-delay"
AUTH = "auth"                   # reading and answering commands
STARTTLS = "starttls"           # TLS handshake in progress
AUTH_REQUEST = "auth-request"   # waiting for the auth service
AUTH_SLEEP = "auth-sleep"       # Auth-Wait before the error line (or a WAIT retry)
PROXY = "proxy"                 # backend connect / login / relay: client not read
CLOSED = "closed"

# mail_state before a command (nginx's ngx_*_start); inside a SASL exchange it is a
# SaslState, and POP3 adds its own state after USER
START = "start"


class SaslState(NamedTuple):
    """``mail_state`` inside a SASL exchange: which mechanism, which step.

    ``last``: the client's next line ends the exchange (see ``sasl.Challenge``).
    """

    mechanism: sasl.Mechanism
    step: str
    last: bool

_TIMED_OUT = "client timed out (110: Connection timed out)"
_GREETING_ACTION = "sending client greeting line"
_AUTH_ACTION = "in auth state"
_EMPTY = memoryview(b"")


class MachineStateError(RuntimeError):
    """The caller used a machine in a way its current state does not allow."""


class ServerMachine:
    """Base of the client-facing pre-auth machines (see ``events`` for the actions).

    Feed client bytes with :meth:`receive_data` (or :meth:`get_buffer` +
    :meth:`buffer_updated`, which read straight into the command buffer); report
    the timer with :meth:`timer_expired`, the end of a STARTTLS handshake with
    :meth:`tls_established`, and the auth outcome with :meth:`auth_result`.
    """

    protocol = ""
    auth_directive = ""             # imap_auth, pop3_auth or smtp_auth
    reader_name = ""
    sasl_prompt = b""               # "+ " or "334 "
    secret_commands: frozenset[bytes] = frozenset()
    secret_codes: frozenset[int] = frozenset()  # the reader's codes of those commands
    INTERNAL_ERROR = b""
    CERT_ERROR = b""
    debug = False  #: set by the caller when its log takes debug lines
    NO_CERT = b""
    auth_command = 0                # the reader's code of AUTH/AUTHENTICATE
    # set when used (fewer attributes for every session)
    mechanism: sasl.Mechanism | None = None    # the exchange that gave the credentials
    _failure: tuple[bytes, float] | None = None  # the reply after a failure challenge
    sasl_host: bytes | None = None  # the server an OAUTHBEARER client named
    sasl_port: bytes | None = None

    def __init__(self, config, *, tls: bool = False, greeted: bool = False,
                 implementation: str | None = None, rand=None, now=None) -> None:
        self.config = config
        self.impl = _impl.get(implementation)
        # the configured size; an exchange whose mechanism needs more grows it (see
        # _grow_for_mechanism), so other commands keep the configured limit
        self.buffer = self.impl.RelayBuffer(self._buffer_size())
        self.reader = getattr(self.impl, self.reader_name)(self.buffer)
        self.tls = tls
        self.starttls_used = False
        self.phase = AUTH
        self.mail_state = START
        self.errors = 0
        self.login_attempt = 0
        self.auth_method = sasl.PLAIN.auth_method
        self.login = b""
        self.password = b""
        self.backend_password: bytes | None = None
        self.salt: bytes | None = None
        self.upstream: ConnectBackend | None = None
        # greeted: the caller sent fixed_start()'s actions instead of start()'s
        self.log_action = _AUTH_ACTION if greeted else _GREETING_ACTION
        self.quit = False
        self._server_name = config.server_name.encode(*CONFIG_ENCODING)
        self._rand = rand
        self._now = now
        self._reply = b""
        self._starttls = False
        self._retry: AuthRequest | None = None
        self._error_line = b""
        self._backlog = bytearray()
        self._out: list = []
        # (start, end) in the command buffer of every SASL response line read since the
        # buffer was last emptied: secrets wherever they sit (see _loggable)
        # (start, end, credentials) in the command buffer of what must not be logged,
        # since the buffer was last emptied: every SASL response line, and every command
        # carrying credentials, with the literals of an IMAP one (see _loggable)
        self._secret_spans: list[tuple[int, int, bool]] = []
        self._command_start = 0  # where the command being read began in the buffer
        self._between_commands = True

    @classmethod
    def fixed_greeting(cls, config) -> bytes | None:
        """The greeting line when every connection gets the same one (no salt, no delay)."""
        return None

    @classmethod
    def fixed_start(cls, config) -> tuple | None:
        """The actions of :meth:`start` when they are the same for every connection.

        A caller may then greet with them and make the machine later, with
        ``greeted=True``, when the client first needs it: a session whose client never
        speaks costs no machine.
        """
        greeting = cls.fixed_greeting(config)
        return None if greeting is None else (Send(greeting), ArmTimer(config.timeout))

    # -- inputs -------------------------------------------------------------

    def start(self) -> list:
        """Greet the client (after any PROXY header, implicit TLS and DNS)."""
        self._greet()
        return self._flush()

    @property
    def want_read(self) -> bool:
        """Whether the caller should read from the client and feed the bytes now."""
        return (self.phase in (AUTH, GREETING_DELAY) and not self._backlog
                and not self.buffer.full)

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable view of the command buffer's free space (asyncio BufferedProtocol).

        Empty when the machine should not be fed now (see :attr:`want_read`).
        """
        if self._backlog or self.phase in (CLOSED, STARTTLS):
            return _EMPTY
        return self.buffer.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> list:
        """``nbytes`` were written into the view from :meth:`get_buffer`."""
        if nbytes:
            self.buffer.buffer_updated(nbytes)
            self._on_data()
        return self._flush()

    def receive_data(self, data: bytes) -> list:
        """Feed client bytes; what does not fit waits, as in a socket buffer.

        Bytes that arrive while the machine is not reading (auth in progress, TLS
        handshake after STARTTLS) stay queued, or are dropped for STARTTLS.
        """
        if self.phase == CLOSED:
            return []
        if self.phase == STARTTLS:
            # plaintext after an accepted STARTTLS is never executed
            return []
        self._backlog += data
        self._pump()
        return self._flush()

    def take_unread(self) -> bytes:
        """Bytes given to :meth:`receive_data` that never entered the buffer."""
        data = bytes(self._backlog)
        self._backlog.clear()
        return data

    def eof_received(self) -> list:
        """The client closed its side: nginx closes the session silently."""
        if self.phase not in (CLOSED, PROXY):
            self.phase = CLOSED
            self._out.append(Close())
        return self._flush()

    def timer_expired(self) -> list:
        """The timer armed by the last :class:`ArmTimer` fired."""
        if self.phase in (AUTH, STARTTLS):
            self._log("info", _TIMED_OUT)
            self.phase = CLOSED
            self._out.append(Close(timed_out=True))
        elif self.phase == GREETING_DELAY:
            self._send_greeting()
            self._pump()
        elif self.phase == AUTH_SLEEP:
            if self._retry is not None:
                request, self._retry = self._retry, None
                self.phase = AUTH_REQUEST
                self._out.append(request)
            else:
                self._return_to_auth()
        return self._flush()

    def tls_established(self) -> list:
        """The TLS handshake started by :class:`StartTLS` succeeded."""
        if self.phase != STARTTLS:
            raise MachineStateError("no STARTTLS handshake is in progress")
        self.tls = True
        self.starttls_used = True
        self.phase = AUTH
        self.mail_state = START
        self.reader.reset_state()
        self.log_action = _AUTH_ACTION
        return self._flush()

    def certificate_rejected(self, missing: bool) -> list:
        """The client certificate policy failed after a handshake (ngx_mail_verify_cert()
        in src/mail/ngx_mail_handler.c).

        The caller has logged the reason; the client gets the protocol's line.
        """
        self._send(self.NO_CERT if missing else self.CERT_ERROR)
        self.phase = CLOSED
        self._out.append(Close())
        return self._flush()

    def auth_result(self, result) -> list:
        """Consume the auth service's answer to the last :class:`AuthRequest`."""
        if self.phase != AUTH_REQUEST:
            raise MachineStateError("no auth request is pending")
        if isinstance(result, AuthOK):
            self._auth_ok(result)
        elif isinstance(result, AuthFailed):
            self._auth_failed(result)
        elif isinstance(result, AuthRetry):
            # asked again once; nginx keeps its WAIT flag and takes every later answer
            # but a failure as WAIT again (docs/differences.md#auth_http)
            request = self._request()
            if result.wait > 0:
                self._retry = request
                self.phase = AUTH_SLEEP
                self._out.append(ArmTimer(result.wait))
            else:
                self._out.append(request)
        elif isinstance(result, AuthInternalError):
            self._internal_error()
        else:
            raise TypeError(f"not an auth result: {result!r}")
        return self._flush()

    def backend_login(self, endpoints: Endpoints | None = None):
        """The backend login machine for the server given by :class:`ConnectBackend`;
        ``endpoints`` (None for a UNIX-socket client) for what tells the backend where
        the client is (``proxy_imap_id``, ``proxy_pop3_xclient``)."""
        if self.phase != PROXY or self.upstream is None:
            raise MachineStateError("the session is not proxying")
        backend = self._make_backend(endpoints)
        backend.starttls = self.upstream.tls == "starttls"
        return backend

    # -- the command loop (ngx_mail_read_command + the protocol handler) -----

    def _pump(self) -> None:
        while self._backlog and self.phase in (AUTH, GREETING_DELAY):
            n = self.buffer.write(self._backlog)
            if not n:
                break
            del self._backlog[:n]
            self._on_data()

    def _on_data(self) -> None:
        if self.phase == AUTH:
            self._process()
        elif self.phase == GREETING_DELAY:
            self._reject_before_greeting()
        elif self.phase == STARTTLS:
            self.buffer.reset()

    def _process(self) -> None:
        reader = self.reader
        buffer = self.buffer
        while self.phase == AUTH:
            start = buffer.pos
            if self._between_commands:
                self._command_start = start
            spans = self._secret_spans
            if spans and start < spans[-1][1]:
                spans.clear()  # the buffer was emptied since: those bytes are gone
            sasl_response = self.mail_state != START
            rc = reader.parse()
            # an IMAP literal (LITERAL) or a partial line (AGAIN) leaves the command open
            self._between_commands = rc == OK or rc == INVALID
            if sasl_response:
                if self._between_commands:
                    spans.append((self._command_start, buffer.pos, False))
            elif rc == OK:
                if reader.command in self.secret_codes:
                    spans.append((self._command_start, buffer.pos, True))
            elif rc == INVALID:
                self._note_invalid_command(self._command_start, buffer.pos)
            if self.debug and self._between_commands:
                text = self._loggable(buffer.contents()[:buffer.pos], begin=self._command_start)
                self._log("debug", '%s auth command: "%s"' % (
                    self.protocol, text.removesuffix("\\x0a").removesuffix("\\x0d")))
            if rc == AGAIN:
                if not self.buffer.full or self._grow_for_mechanism():
                    return
                self._log("info", 'client sent too long command "%s"'
                          % self._loggable(self.buffer.contents()))
                self.quit = True
                rc = INVALID
            elif rc == INVALID:
                self._count_invalid()
            self._handle(rc)
            if self.quit and self.phase != CLOSED:
                self.phase = CLOSED
                self._out.append(Close())
            if self._starttls:
                self._starttls = False
                self._begin_starttls()

    def _grow_for_mechanism(self) -> bool:
        """The buffer is full inside an exchange (or an AUTH command naming it) of an
        enabled mechanism that needs a larger buffer (OAuth tokens): grow it to the
        mechanism's size and read on (True)."""
        state = self.mail_state
        if isinstance(state, SaslState):
            mechanism = state.mechanism
        else:
            reader = self.reader
            if state != START or reader.command != self.auth_command or len(reader.args) != 1:
                return False
            mechanism = sasl.by_name(self.protocol, reader.args[0])
            if mechanism is None or not mechanism.enabled(self.protocol, self.methods):
                return False
        if mechanism.min_buffer <= self.buffer.capacity:
            return False
        self.buffer.grow(mechanism.min_buffer)
        return True

    def _restore_buffer(self) -> None:
        """Back to the configured command buffer once a grown one holds nothing."""
        if self.buffer.capacity > self._buffer_size() and not len(self.buffer):
            self.buffer = self.impl.RelayBuffer(self._buffer_size())
            self.reader.buffer = self.buffer

    def _count_invalid(self) -> None:
        """An invalid command toward ``max_errors`` (ngx_mail_read_command())."""
        self.errors += 1
        if self.errors >= self.config.max_errors:
            self._log("info", "client sent too many invalid commands")
            self.quit = True

    def _handle(self, rc: int) -> None:  # pragma: no cover - each protocol defines it
        raise NotImplementedError

    def _buffer_size(self) -> int:  # pragma: no cover - each protocol defines it
        """The command buffer the configuration gives (a mechanism may need more)."""
        raise NotImplementedError

    def _conclude(self, rc: int, invalid_reply: bytes) -> bool:
        """The end of a command: start authenticating (True), or set the reply of an
        invalid command and return to the start state (nginx's shared handler tail)."""
        if rc == DONE:
            self._start_auth()
            return True
        if rc == INVALID and self._failure is not None:
            rc = self._failure_answered()
        if rc == FAILED:
            return True
        if rc == INVALID:
            self.mail_state = START
            self.reader.reset_state()
            self._reply = invalid_reply
        return False

    # -- helpers for the protocol handlers ----------------------------------

    def _send(self, data: bytes) -> None:
        self._out.append(Send(data))

    def _log(self, level: str, message: str) -> None:
        self._out.append(Log(level, message, self.log_action))

    def _flush(self) -> list:
        out, self._out = self._out, []
        return out

    def _greet(self) -> None:
        self._send(self._greeting())
        self._out.append(ArmTimer(self.config.timeout))
        self.log_action = _AUTH_ACTION

    def _starttls_only(self) -> bool:
        return not self.tls and self.config.starttls == "only"

    def _starttls_allowed(self) -> bool:
        return not self.tls and self.config.starttls != "off"

    def _begin_starttls(self) -> None:
        # every byte already received after STARTTLS is dropped (CVE-2014-3556)
        self.buffer.reset()
        self.reader.reset_state()
        self._backlog.clear()
        self.phase = STARTTLS
        self.log_action = "in starttls state"
        self._out.append(StartTLS())

    def _internal_error(self) -> None:
        self._send(self.INTERNAL_ERROR)
        self.phase = CLOSED
        self._out.append(Close())

    def _make_salt(self) -> bytes:
        return sasl.make_salt(self._server_name, rand=self._rand, now=self._now)

    def _sasl_begin(self, args: list[bytes]) -> int:
        """An AUTH/AUTHENTICATE command (after the starttls-only check)."""
        try:
            mechanism, initial = sasl.parse_auth(self.protocol, args)
        except sasl.SaslRejected:
            return INVALID
        # nginx skips the *_auth check of EXTERNAL with an initial response (its
        # ngx_mail_auth_parse() finishes that form itself); here it applies to both
        # (docs/differences.md#sasl)
        if mechanism.refused_when_disabled and not mechanism.enabled(self.protocol,
                                                                     self.methods):
            return INVALID
        return self._sasl_step(mechanism, None, initial)

    def _sasl_continue(self) -> int:
        """A SASL response line (the reader parsed it as argument 1)."""
        if self._failure is not None:
            return self._failure_answered()
        args = self.reader.args
        state = self.mail_state
        return self._sasl_step(state.mechanism, state.step, args[0] if args else b"")

    def _sasl_step(self, mechanism: sasl.Mechanism, step: str | None,
                   data: bytes | None) -> int:
        """Run one step of ``mechanism``'s exchange: the command (``step`` None, ``data``
        the initial response or None) or the answer to the challenge of ``step``."""
        exchange = mechanism.exchange
        try:
            if step is None:
                result = exchange.begin(self, data)
            else:
                result = exchange.respond(self, step, data)
        except sasl.SaslRejected as exc:
            self._log("info", str(exc))
            return INVALID
        if isinstance(result, sasl.Credentials):
            self.mechanism = mechanism
            self.auth_method = mechanism.auth_method
            self.login = result.login
            self.password = result.password
            if result.host is not None or result.port is not None:
                self.sasl_host = result.host
                self.sasl_port = result.port
            return DONE
        self._challenge(mechanism, result)
        return OK

    def _challenge(self, mechanism: sasl.Mechanism, challenge: sasl.Challenge) -> None:
        self._reply = self.sasl_prompt + challenge.payload + b"\r\n"
        self.mail_state = SaslState(mechanism, challenge.step, challenge.last)
        if self.debug:
            self._log("debug", "mail auth state: %s %s"
                      % (mechanism.name.decode("ascii", "replace"), challenge.step))
        if challenge.login is not None:
            self.login = challenge.login

    @property
    def methods(self) -> frozenset[str]:
        """The server's ``imap_auth``, ``pop3_auth`` or ``smtp_auth`` values."""
        return getattr(self.config, self.auth_directive)

    # -- what a SASL exchange uses of the machine (sasl.Session), with login ------

    def decode_base64(self, data: bytes) -> bytes | None:
        return self.impl.decode_base64(data)

    def encode_base64(self, data: bytes) -> bytes:
        return self.impl.encode_base64(data)

    def session_salt(self) -> bytes:
        if self.salt is None:
            self.salt = self._make_salt()
        return self.salt

    def _loggable(self, data: bytes, mark_line_ends: bool = False, begin: int = 0) -> str:
        """Buffer text for a log line, with anything that may be a secret withheld.

        nginx logs such buffers raw; a password or SASL response must never reach a
        log here (docs/differences.md#logging).  ``data`` is the command buffer from its
        start: a SASL response line read earlier shows as ``...`` wherever it sits; a
        command carrying credentials keeps only its command word (the lines of its
        literals show as ``...``); nothing is shown after such a command that has not
        been read whole yet (what follows may be its SASL response).  Inside a SASL
        exchange the whole buffer is withheld.  With ``mark_line_ends`` CR and LF show
        as ``_``, as in nginx's SMTP rejections.  Lines before offset ``begin`` (the
        commands before the one to show) are left out.
        """
        if self.mail_state != START:
            return "..." if data else ""
        read_before = self._command_start
        spans = self._secret_spans
        out = []
        offset = 0
        for line in data.splitlines(keepends=True):
            if offset < begin:
                offset += len(line)
                continue
            body = line.rstrip(b"\r\n")
            ending = line[len(body):]
            span = next((span for span in spans if span[0] <= offset < span[1]), None)
            if span is not None:
                word_end = self._secret_word_end(line) if span[2] and offset == span[0] else None
                if word_end is not None:  # a credentials command: its word stays
                    out.append(line[:word_end] + b" ..." + ending)
                else:
                    out.append(b"..." + ending)
            else:
                word_end = self._secret_word_end(line)
                if word_end is None:
                    out.append(line)
                elif offset + len(line) > read_before:
                    # not read whole yet: the lines after it may be its SASL responses
                    out.append(line[:word_end] + b" ...")
                    break
                else:
                    out.append(line[:word_end] + b" ..." + ending)
            offset += len(line)
        text = b"".join(out)
        if mark_line_ends:
            text = text.replace(b"\r", b"_").replace(b"\n", b"_")
        return printable(text)

    def _note_invalid_command(self, start: int, end: int) -> None:
        """A command was refused: when its first line carries credentials, all of it is
        kept from the log (an IMAP LOGIN refused after its literals were read)."""
        command = self.buffer.contents()[start:end]
        if self._secret_word_end(command[:command.find(b"\n") + 1]) is not None:
            self._secret_spans.append((start, end, True))

    def _secret_word_end(self, line: bytes) -> int | None:
        """Where the command word ends if ``line`` carries credentials."""
        start = self._command_word_start(line)
        if start is None:
            return None
        end = start
        while end < len(line) and line[end] not in b" \r\n":
            end += 1
        if line[start:end].upper() in self.secret_commands:
            return end
        return None

    def _command_word_start(self, line: bytes) -> int | None:
        return 0

    # -- authentication ------------------------------------------------------

    def _request(self) -> AuthRequest:
        return AuthRequest(
            protocol=self.protocol, method=self.auth_method, login=self.login,
            password=self.password, salt=self.salt, login_attempt=self.login_attempt,
            sasl_host=self.sasl_host, sasl_port=self.sasl_port, **self._request_extra())

    def _request_extra(self) -> dict:
        return {}

    def _start_auth(self) -> None:
        # ngx_mail_auth(): the buffer is kept if pipelined bytes follow, the timer
        # budget stops, and the client is not read until the answer
        self.buffer.reset_if_drained()
        self.reader.reset_state()
        self.login_attempt += 1
        self.phase = AUTH_REQUEST
        self.log_action = "in http auth state"
        if self.debug:  # the login only: nginx logs the password here too
            self._log("debug", 'mail auth: %s login:"%s" attempt:%d' % (
                self.auth_method, printable(self.login), self.login_attempt))
        self._out.append(DisarmTimer())
        self._out.append(self._request())

    def _auth_ok(self, result: AuthOK) -> None:
        if result.user is not None:
            self.login = result.user
        if result.password is not None:
            self.backend_password = result.password
        elif sasl.by_auth_method(self.auth_method).backend_password:
            self.backend_password = self.password
        else:
            self.backend_password = None
        if self.backend_password is None and self.protocol != "smtp":
            self._out.append(Log("error", f"auth http server {result.auth_server} "
                                          "did not send password", self.log_action))
            self._internal_error()
            return
        upstream = result.upstream or f"{result.server}:{result.port}"
        self.upstream = ConnectBackend(result.server, result.port, upstream,
                                       result.backend_tls or self.config.backend_tls)
        self.phase = PROXY
        self.log_action = "connecting to upstream"
        self._out.append(self.upstream)

    def _auth_failed(self, result: AuthFailed) -> None:
        self._log("info", 'client login failed: "%s"' % printable(result.message))
        line = self._failure_line(result)
        mechanism = self.mechanism
        challenge = (mechanism.exchange.failed(self, result.message, result.oauth_error)
                     if mechanism is not None else None)
        if challenge is None:
            self._fail(line, result.wait)
            return
        # the failure as a challenge first; its answer brings the reply (_sasl_continue)
        self._failure = (line, result.wait)
        self._challenge(mechanism, challenge)
        self._send(self._reply)
        self.reader.expect_response()
        self.phase = AUTH
        self.log_action = _AUTH_ACTION
        self._out.append(ArmTimer(self.config.timeout))
        self._resume()

    def _failure_answered(self) -> int:
        """The client answered a failure challenge (however): the failure reply."""
        line, wait = self._failure
        self._failure = None
        self.reader.reset_state()
        self.buffer.reset_if_drained()
        self._fail(line, wait)
        return FAILED

    def _fail(self, line: bytes, wait: float) -> None:
        """The failure reply now, or after Auth-Wait and back to the start."""
        if wait > 0:
            self._error_line = line
            self.phase = AUTH_SLEEP
            self._out.append(ArmTimer(wait))
            return
        self._send(line)
        self.phase = CLOSED
        self._out.append(Close())

    def _failure_line(self, result: AuthFailed) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def _return_to_auth(self) -> None:
        # ngx_mail_auth_sleep_handler: the error line, then a fresh pre-auth budget
        self.phase = AUTH
        self.mail_state = START
        self.auth_method = sasl.PLAIN.auth_method
        self.mechanism = None
        self.sasl_host = self.sasl_port = None
        self.log_action = _AUTH_ACTION
        self._restore_buffer()
        self._after_auth_wait()
        self._send(self._error_line)
        self._error_line = b""
        self._out.append(ArmTimer(self.config.timeout))
        self._resume()

    def _resume(self) -> None:
        """Read again: what the client sent meanwhile first."""
        if len(self.buffer):
            self._process()
        self._pump()

    def _after_auth_wait(self) -> None:
        """Protocol-specific reset when a delayed failure returns to the start."""
