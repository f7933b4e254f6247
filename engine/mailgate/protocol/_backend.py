"""What the three backend login machines share (src/mail/ngx_mail_proxy_module.c).

nginx logs in to the backend itself, one step at a time: read a reply into the proxy
buffer, check only its start, send the next command and empty the buffer
(ngx_mail_proxy_read_response(), ngx_mail_proxy_pop3_handler(),
ngx_mail_proxy_imap_handler() and ngx_mail_proxy_smtp_handler();
docs/nginx-behaviour.md#backend-login).  A reply is complete when the buffer holds at
least 4 bytes and ends with CRLF; a full buffer without a final CRLF is "too long".
When the login is finished the buffer becomes the backend→client relay buffer, holding
what the client must see first.

With ``starttls`` (mailgate's ``proxy_starttls``, or ``Auth-SSL-Backend: starttls``) the
machine asks for TLS after the greeting (IMAP ``STARTTLS``, POP3 ``STLS``, SMTP
``EHLO`` announcing it, then ``STARTTLS``); on the backend's yes it emits
``StartTLSUpstream`` and drops whatever else the backend sent in the clear, so that no
byte from before the handshake is read as a reply after it (the backend-side mirror of
CVE-2014-3556, RFC 3207 section 4.2 and RFC 2595 section 3.1), and goes on with the
login once told ``tls_established()``.  A backend that refuses fails the login with
the protocol's internal error, as an unavailable backend does.
"""

from __future__ import annotations

import base64
import re
from typing import NamedTuple

from mailgate.log import printable
from mailgate.protocol import _impl, sasl
from mailgate.protocol.events import (
    ArmTimer,
    DisarmTimer,
    Log,
    LoginDone,
    LoginFailed,
    SendUpstream,
    StartTLSUpstream,
)

_AGAIN = 0
_OK = 1
_BAD = 2
_CHALLENGE = 3      # a SASL challenge where the outcome was due: the backend refused

# the states of a replayed SASL exchange (see BackendLogin._check_sasl)
SASL_COMMAND = "sasl"
SASL_RESPONSE = "sasl_response"
SASL_ERROR = "sasl_error"

_TIMED_OUT = "upstream timed out (110: Connection timed out)"
_EMPTY = memoryview(b"")


class Endpoints(NamedTuple):
    """Where the client connected from (after realip) and to: what a backend that trusts
    the proxy logs and rate-limits instead of the proxy's address (IMAP ID's
    ``x-originating-*``/``x-connected-*``, POP3 XCLIENT)."""

    client_ip: str
    client_port: int
    server_ip: str
    server_port: int


def _c_string(data: bytes) -> str:
    """What nginx's ``%s`` prints: the bytes up to the first NUL."""
    nul = data.find(b"\0")
    if nul >= 0:
        data = data[:nul]
    return printable(data)


class BackendLogin:
    """Base of the backend login machines.

    Feed backend bytes with :meth:`receive_data` (or :meth:`get_buffer` +
    :meth:`buffer_updated`); report a timer expiry with :meth:`timer_expired` and a
    closed or failed backend connection with :meth:`connection_lost`.  The outcome
    is a :class:`LoginDone` or a :class:`LoginFailed` action.
    """

    INTERNAL_ERROR = b""
    _login = b""
    _password: bytes | None = None
    protocol = ""
    debug = False  #: set by the caller when its log takes debug lines
    #: ask the backend for TLS after its greeting (set by ``ServerMachine.backend_login``)
    starttls = False
    # the client's mechanism when it is replayed (sasl.SASL_REPLAY), else None
    mechanism: sasl.Mechanism | None = None

    def __init__(self, config, *, implementation: str | None = None) -> None:
        self.config = config
        self.impl = _impl.get(implementation)
        self.buffer = self.impl.RelayBuffer(config.proxy_buffer)
        self.state = "start"
        self.finished = False
        self.log_action = "connecting to upstream"
        self._backlog = bytearray()
        self._out: list = []

    # -- inputs -------------------------------------------------------------

    def start(self) -> list:
        """The backend connection is being opened: arm the login timer."""
        return [ArmTimer(self.config.timeout)]

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable view of the proxy buffer's free space (asyncio BufferedProtocol)."""
        if self.finished or self._backlog or self.state == "tls":
            return _EMPTY
        return self.buffer.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> list:
        """``nbytes`` were written into the view from :meth:`get_buffer`."""
        if nbytes and not self.finished:
            self.buffer.buffer_updated(nbytes)
            self._on_data()
        return self._flush()

    def receive_data(self, data: bytes) -> list:
        """Feed backend bytes; what does not fit waits, as in a socket buffer."""
        if self.state == "tls":
            return []  # in the clear during the TLS handshake: never a reply
        if self.finished:
            self._backlog += data
            return []
        self._backlog += data
        while self._backlog and not self.finished:
            n = self.buffer.write(self._backlog)
            if not n:
                break
            del self._backlog[:n]
            self._on_data()
        return self._flush()

    def take_unread(self) -> bytes:
        """Bytes given to :meth:`receive_data` that never entered the buffer.

        After :class:`LoginDone` they belong to the backend→client stream, after
        the buffer's contents.
        """
        data = bytes(self._backlog)
        self._backlog.clear()
        return data

    def tls_established(self) -> list:
        """The TLS handshake that ``StartTLSUpstream`` asked for is done: log in."""
        if self.state == "tls" and not self.finished:
            self.state = "start"
            self._after_tls()
        return self._flush()

    def timer_expired(self) -> list:
        """The login timer (``timeout``) fired."""
        if not self.finished:
            self._out.append(Log("info", _TIMED_OUT, self.log_action))
            self._fail(self.INTERNAL_ERROR)
        return self._flush()

    def connection_lost(self) -> list:
        """The backend closed, reset or failed before the login finished.

        The caller logs any system error (e.g. ``recv() failed (111: …)``).
        """
        if not self.finished:
            self._fail(self.INTERNAL_ERROR)
        return self._flush()

    # -- reply reading (ngx_mail_proxy_read_response) -------------------------

    def _on_data(self) -> None:
        self.log_action = "reading response from upstream"
        buf = self.buffer
        if len(buf) < 4:
            return
        data = buf.readable()
        if data[-2:] != b"\r\n":
            if buf.full:
                text = _c_string(self._scrub(bytes(data[:-1])))
                self._out.append(Log("error", f'upstream sent too long response line: "{text}"',
                                     self.log_action))
                self._fail(self.INTERNAL_ERROR)
            return
        reply = bytes(data)
        rc, skip = self._check(reply)
        if rc == _AGAIN:
            if buf.full:
                # nginx would read 0 bytes into the full buffer and fail
                self._fail(self.INTERNAL_ERROR)
            return
        if self.debug:
            self._out.append(Log("debug", 'mail proxy %s auth handler: "%s"'
                                 % (self.protocol, printable(self._scrub(reply[:-2]))), None))
        if rc == _OK:
            self._step()
            return
        if rc == _CHALLENGE:
            # RFC 7628 section 3.2.3: the client answers an error challenge, and the
            # failure follows
            self._send_line(self.mechanism.error_answer + b"\r\n", SASL_ERROR,
                            "sending SASL error answer to upstream")
            return
        self._bad_reply(reply, skip)

    def _check(self, reply: bytes) -> tuple[int, int]:  # pragma: no cover
        """(result, offset of the text to log on a bad reply)."""
        raise NotImplementedError

    def _step(self) -> None:  # pragma: no cover
        """The reply was the expected one: send the next command or finish."""
        raise NotImplementedError

    def _after_tls(self) -> None:  # pragma: no cover
        """TLS to the backend is up: the first command of the login over it."""
        raise NotImplementedError

    # -- STARTTLS to the backend ------------------------------------------------

    def _start_tls(self) -> None:
        """The backend said yes to STARTTLS: TLS now.  What else it sent in the clear
        (in the buffer, or not read into it yet) is dropped unread."""
        self.buffer.reset()
        self._backlog.clear()
        self.state = "tls"
        self.log_action = "SSL handshaking to upstream"
        self._out.append(StartTLSUpstream())

    def _no_starttls(self, reply: bytes) -> None:
        """The backend refused STARTTLS or did not announce it: the login fails as with
        an unavailable backend, whatever ``proxy_pass_error_message`` says."""
        line = reply.split(b"\r\n", 1)[0]
        self._out.append(Log("error", 'upstream does not support STARTTLS: "%s"'
                             % _c_string(self._scrub(line)), self.log_action))
        self._fail(self.INTERNAL_ERROR)

    def _scrub(self, line: bytes) -> bytes:
        """``line`` with the password sent to the backend (as is or in base64) withheld:
        a backend that echoes what it received must not put a password in the log.

        Only whole words are withheld (a password of one letter must not blank that
        letter everywhere); base64 characters count as part of a word.
        """
        password = self._password
        if not password:
            return line
        secrets = [base64.b64encode(b"\0" + self._login + b"\0" + password),
                   base64.b64encode(password), password]
        if self.mechanism is not None:
            secrets.insert(0, base64.b64encode(self._sasl_response()))
        for secret in secrets:
            line = re.sub(rb"(?<![A-Za-z0-9+/=])%s(?![A-Za-z0-9+/=])" % re.escape(secret),
                          b"...", line)
        return line

    def _bad_reply(self, reply: bytes, skip: int) -> None:
        if self.state.startswith("starttls"):
            self._no_starttls(reply)
            return
        line = self._scrub(reply[skip:-2])
        if self.config.proxy_pass_error_message:
            self._out.append(Log("info", 'upstream sent invalid response: "%s"'
                                 % printable(line), self.log_action))
            self._fail(reply)
        else:
            self._out.append(Log("error", 'upstream sent invalid response: "%s"'
                                 % _c_string(line), self.log_action))
            self._fail(self.INTERNAL_ERROR)

    # -- a replayed SASL exchange ---------------------------------------------

    def _sasl_response(self) -> bytes:
        return self.mechanism.replay_response(self._login, self._password)

    def _check_sasl(self, reply: bytes, continuation: bytes, final: tuple[int, int]
                    ) -> tuple[int, int]:
        """The check of a reply in a replayed exchange: the command wants
        ``continuation``; after the response, ``final`` is the protocol's verdict on a
        final reply, and a continuation is the backend's error challenge; after the
        answer to that, every reply is a failure."""
        state = self.state
        starts = reply.startswith(continuation)
        if state == SASL_COMMAND:
            return (_OK if starts else _BAD), 0
        if state == SASL_RESPONSE:
            return (_CHALLENGE, 0) if starts else final
        return final if final[0] == _AGAIN else (_BAD, final[1])

    def _send_sasl_response(self) -> None:
        self._send_line(self.impl.encode_base64(self._sasl_response()) + b"\r\n",
                        SASL_RESPONSE, "sending SASL response to upstream")

    # -- outputs ------------------------------------------------------------

    def _send_line(self, line: bytes, state: str, action: str) -> None:
        self._out.append(SendUpstream(line))
        if self.debug:  # the step, never the line: it may carry the password
            self._out.append(Log("debug", "mail proxy send %s" % state, None))
        self.state = state
        self.log_action = action
        # what else the backend sent with this reply is dropped: nginx's login
        # handlers empty the proxy buffer after each command they send
        self.buffer.reset()

    def _finish(self) -> None:
        self.finished = True
        self.log_action = None
        self._out.append(DisarmTimer())
        self._out.append(Log("info", "client logged in", None))
        self._out.append(LoginDone(self.buffer))

    def _fail(self, to_client: bytes) -> None:
        self.finished = True
        self._out.append(DisarmTimer())
        self._out.append(LoginFailed(to_client))

    def _flush(self) -> list:
        out, self._out = self._out, []
        return out
