"""The ``auth_http`` client: nginx's request, nginx's reading of the answer, the decision.

The request is nginx's HTTP/1.0 GET with the ``Auth-*`` headers in nginx's order and
escaping (ngx_mail_auth_http_create_request() and ngx_mail_auth_http_escape() in
src/mail/ngx_mail_auth_http_module.c).  The answer is read as nginx reads it, which is
not as HTTP (ngx_mail_auth_http_ignore_status_line(),
ngx_mail_auth_http_parse_header_line() and ngx_mail_auth_http_process_headers() of the
same file): the status line is optional and ignored, a header name is
``[A-Za-z0-9][A-Za-z0-9-]*`` (an underscore is fatal), a line without a colon is a
header with an empty value, a value loses its leading and trailing spaces (a TAB is
kept), and headers HTTP gives a meaning to (``Content-Length``, ``Transfer-Encoding``)
are as unknown as any other.  ``decide`` turns the headers into the machine's auth
result, logging nginx's lines.  Where this differs from nginx (answers over 1024 bytes,
answers split across reads): docs/differences.md#auth_http.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
from dataclasses import dataclass, field
from typing import Callable

from mailgate.auth.facts import AuthFacts
from mailgate.config import AuthHttpTarget
from mailgate.config.values import atoi
from mailgate.inet import format_ip, parse_ip
from mailgate.log import printable
from mailgate.oserror import os_error_text
from mailgate.protocol import sasl
from mailgate.protocol.events import AuthFailed, AuthInternalError, AuthOK, AuthRetry
from mailgate.proxy.tls_transport import TLSTransport
from mailgate.tls import TLSStream

__all__ = [
    "AuthHttpClient",
    "AuthHttpError",
    "AuthTLSError",
    "AuthResponse",
    "LogFunction",
    "build_request",
    "decide",
    "escape",
    "parse_response",
    "query",
]

LogFunction = Callable[[str, str], None]

# nginx stalls past 1024 bytes; a larger answer is accepted (docs/differences.md#auth_http)
RESPONSE_LIMIT = 64 * 1024
_ESCAPED = frozenset(range(0x21)) | {ord("%")}
_NAME = re.compile(rb"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_END_OF_HEADERS = re.compile(rb"(?:\A|\n)\r?\n")
_BARE_CR = re.compile(rb"\r[^\n]")
_OAUTH_ERROR_HEADERS = {b"auth-error-" + f.encode(): f for f in sasl.OAUTH_ERROR_FIELDS}


def escape(value: bytes) -> bytes:
    """nginx's NGX_ESCAPE_MAIL_AUTH: bytes 0x00-0x20 and ``%`` become ``%XX``."""
    if not any(b in _ESCAPED for b in value):
        return value
    return b"".join(b"%%%02X" % b if b in _ESCAPED else bytes((b,)) for b in value)


def _auth_fields(method: str) -> tuple[str, ...]:
    """The extra headers the method sends, from the protocol package's method table."""
    entry = sasl.by_auth_method(method)
    return entry.auth_fields if entry is not None else ()


def build_request(target: AuthHttpTarget, extra_headers: tuple[tuple[str, str], ...], facts: AuthFacts,
                  *, keepalive: bool = False) -> bytes:
    """The request bytes, exactly as nginx writes them; with ``keepalive`` in HTTP/1.1,
    which keeps the connection open (RFC 9112 section 9.3)."""
    out = [
        b"GET %s HTTP/1.%d\r\n" % (target.uri.encode("utf-8", "surrogateescape"), keepalive),
        b"Host: %s\r\n" % target.host_header.encode("utf-8", "surrogateescape"),
        b"Auth-Method: %s\r\n" % facts.method.encode(),
        b"Auth-User: %s\r\n" % escape(facts.login),
        b"Auth-Pass: %s\r\n" % escape(facts.password),
    ]
    fields = _auth_fields(facts.method)
    if sasl.AUTH_SALT in fields and facts.salt:
        out.append(b"Auth-Salt: %s" % facts.salt)  # the salt carries its own CRLF
    for name, value in ((sasl.SASL_HOST, facts.sasl_host), (sasl.SASL_PORT, facts.sasl_port)):
        if name in fields and value is not None:
            out.append(b"%s: %s\r\n" % (name.encode(), escape(value)))
    out.append(b"Auth-Protocol: %s\r\n" % facts.protocol.encode())
    out.append(b"Auth-Login-Attempt: %d\r\n" % facts.login_attempt)
    out.append(b"Client-IP: %s\r\n" % facts.client_ip.encode())
    if facts.client_host:
        out.append(b"Client-Host: %s\r\n" % facts.client_host.encode())
    if facts.imap_id is not None:
        # mailgate's own: the client's RFC 2971 ID list (auth_http_pass_imap_id)
        out.append(b"Auth-IMAP-ID: %s\r\n" % escape(facts.imap_id))
    pp = facts.proxy_protocol
    if pp is not None:
        out.append(b"Proxy-Protocol-Addr: %s\r\n" % pp.source_address.encode())
        out.append(b"Proxy-Protocol-Port: %d\r\n" % pp.source_port)
        out.append(b"Proxy-Protocol-Server-Addr: %s\r\n" % pp.destination_address.encode())
        out.append(b"Proxy-Protocol-Server-Port: %d\r\n" % pp.destination_port)
    # HELO, MAIL FROM and RCPT TO cannot hold CR or LF: sent as they are
    for name, value in zip(sasl.SMTP_ENVELOPE, (facts.smtp_helo, facts.smtp_from,
                                                facts.smtp_to)):
        if name in fields:
            out.append(b"%s: %s\r\n" % (name.encode(), value or b""))
    ssl = facts.ssl
    if ssl is not None:
        out.append(b"Auth-SSL: on\r\n")
        out.append(b"Auth-SSL-Protocol: %s\r\n" % ssl.protocol.encode())
        out.append(b"Auth-SSL-Cipher: %s\r\n" % ssl.cipher.encode())
        for name, value in (
            (b"Verify", ssl.verify),
            (b"Subject", ssl.subject),
            (b"Issuer", ssl.issuer),
            (b"Serial", ssl.serial),
            (b"Fingerprint", ssl.fingerprint),
        ):
            if value:
                out.append(b"Auth-SSL-%s: %s\r\n" % (name, value.encode("utf-8", "surrogateescape")))
        if ssl.certificate:
            out.append(b"Auth-SSL-Cert: %s\r\n" % escape(ssl.certificate.encode()))
    for name, value in extra_headers:
        out.append(b"%s: %s\r\n" % (name.encode("utf-8", "surrogateescape"),
                                    value.encode("utf-8", "surrogateescape")))
    out.append(b"\r\n")
    return b"".join(out)


class AuthHttpError(Exception):
    """The answer is one nginx refuses: ``invalid response`` or ``invalid header in response``."""


@dataclass
class AuthResponse:
    """The headers of an answer, read with nginx's rules (the last of each wins)."""

    failure: bytes | None = None
    wait_status: bool = False
    server: bytes = b""
    port: bytes = b""
    user: bytes | None = None
    password: bytes | None = None
    wait: int = 0
    error_code: bytes | None = None
    #: every header line as read, (name, value), for the debug log
    fields: list[tuple[bytes, bytes]] = field(default_factory=list)
    ssl_backend: bytes | None = None  # mailgate's Auth-SSL-Backend
    oauth_error: dict[str, str] | None = None

    def apply(self, name: bytes, value: bytes) -> None:
        """Take one header (the last of each name wins); unknown names are ignored."""
        name = name.lower()
        if name == b"auth-status":
            if value == b"WAIT":
                self.wait_status = True
            elif value != b"OK":
                self.failure = value
        elif name == b"auth-server":
            self.server = value
        elif name == b"auth-port":
            self.port = value
        elif name == b"auth-user":
            self.user = value
        elif name == b"auth-pass":
            self.password = value
        elif name == b"auth-wait":
            wait = atoi(value.decode("latin-1"))
            if wait is not None:
                self.wait = wait
        elif name == b"auth-error-code":
            self.error_code = value
        elif name == b"auth-ssl-backend":
            self.ssl_backend = value
        elif name in _OAUTH_ERROR_HEADERS:
            # mailgate's own: the fields of an OAuth 2.0 client's JSON error
            if self.oauth_error is None:
                self.oauth_error = {}
            self.oauth_error[_OAUTH_ERROR_HEADERS[name]] = value.decode("utf-8", "replace")


def _status_line_end(data: bytes) -> int | None:
    """Where the headers start: after an ``HTTP/...`` first line, else at byte 0.

    Returns None while that cannot be told yet.
    """
    prefix = b"HTTP/"
    if not prefix.startswith(data[: len(prefix)]):
        return 0  # not a status line: nginx reads headers from the first byte
    if len(data) < len(prefix):
        return None
    for i in range(len(prefix), len(data)):
        if data[i] == 0x0A:
            return i + 1
        if data[i] == 0x0D:
            if i + 1 == len(data):
                return None
            if data[i + 1] != 0x0A:
                raise AuthHttpError("invalid response")
            return i + 2
    return None


def _header_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """(name, value) of each complete line of ``block``, as nginx reads a header line."""
    fields = []
    for raw in block.split(b"\n")[:-1]:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        name, _, value = line.partition(b":")
        if b"\r" in line or not _NAME.match(name):
            raise AuthHttpError("invalid header in response")
        fields.append((name, value.strip(b" ")))
    return fields


def parse_response(data: bytes) -> AuthResponse | None:
    """The answer's headers, or None while the empty line ending them has not arrived.

    Raises AuthHttpError for an answer nginx refuses, as soon as nginx would.
    """
    start = _status_line_end(data)
    if start is None:
        return None
    headers = data[start:]
    end = _END_OF_HEADERS.search(headers)
    if end is None:
        _header_fields(headers[: headers.rfind(b"\n") + 1])  # refuse as early as nginx
        if _BARE_CR.search(headers):
            raise AuthHttpError("invalid header in response")
        return None
    block = headers[: end.start() + 1] if end.group().startswith(b"\n") else b""
    response = AuthResponse(fields=_header_fields(block))
    for name, value in response.fields:
        response.apply(name, value)
    return response


def _ip_literal(value: bytes) -> str | None:
    """Auth-Server as ngx_parse_addr() reads it: an IPv4 or IPv6 address, never a name."""
    ip = parse_ip(value)
    return None if ip is None else format_ip(ip)


# Auth-SSL-Backend (mailgate's own header): TLS to this session's backend
_BACKEND_TLS = {b"on": "on", b"starttls": "starttls", b"off": "off"}


def decide(response: AuthResponse, peer: str, log: LogFunction):
    """The machine's auth result for an answer, with nginx's log lines.

    ``peer`` names the auth server (``127.0.0.1:9000``).  Whether a password is
    needed and missing is the machine's check, made when it receives AuthOK.
    ``Auth-SSL-Backend: on | starttls | off`` (any case) sets the TLS to the backend
    for this session; another value is an invalid answer.
    """
    service = "auth http server %s" % peer
    if response.failure is not None:
        return AuthFailed(response.failure, response.wait, response.error_code,
                          response.oauth_error)
    if response.wait_status:
        return AuthRetry(response.wait)
    if not response.server or not response.port:
        log("error", "%s did not send server or port" % service)
        return AuthInternalError()
    server = _ip_literal(response.server)
    if server is None:
        log("error", '%s sent invalid server address:"%s"'
            % (service, response.server.decode("utf-8", "replace")))
        return AuthInternalError()
    port = atoi(response.port.decode("latin-1"))
    if port is None or not 1 <= port <= 65535:
        log("error", '%s sent invalid server port:"%s"' % (service, response.port.decode("utf-8", "replace")))
        return AuthInternalError()
    backend_tls = None
    if response.ssl_backend is not None:
        backend_tls = _BACKEND_TLS.get(response.ssl_backend.lower())
        if backend_tls is None:
            log("error", '%s sent invalid Auth-SSL-Backend:"%s"'
                % (service, response.ssl_backend.decode("utf-8", "replace")))
            return AuthInternalError()
    upstream = "%s:%s" % (response.server.decode("ascii"), response.port.decode("ascii"))
    return AuthOK(server, port, response.user, response.password, upstream, peer, backend_tls)


def _answer_end(data: bytes) -> int:
    """Where the headers of a complete answer end (``parse_response`` took it)."""
    start = _status_line_end(data) or 0
    return start + _END_OF_HEADERS.search(data[start:]).end()


def _kept_body(head: bytes) -> int | None:
    """The body length after which the connection of an HTTP/1.1 answer can take the
    next request; None when it cannot (HTTP/1.0, ``Connection: close``, a body
    that only the end of the connection delimits, chunked).  RFC 9112 sections 6.3
    and 9.3."""
    lines = head.split(b"\n")
    status = lines[0].split()
    if len(status) < 2 or status[0] != b"HTTP/1.1":
        return None
    length = 0 if status[1][:1] == b"1" or status[1] in (b"204", b"304") else None
    for raw in lines[1:]:
        name, _, value = raw.rstrip(b"\r").partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"connection" and b"close" in value:
            return None
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = atoi(value.decode("latin-1"))
            if length is None:
                return None
    return length


class _Retry:
    """A kept connection ended before any byte of the answer: the server had closed it
    (or was closing it); the request goes once more on a fresh connection."""


_RETRY = _Retry()


class _Connection(asyncio.BufferedProtocol, TLSTransport):
    """One connection to the auth server, plain or TLS (``TLSTransport``, with a
    client-side stream), taking one request at a time: the request is written at once,
    the answer read until the end of its headers (at most RESPONSE_LIMIT bytes).  With
    keep-alive it then reads the body away and goes back to its client's idle pool."""

    def __init__(self, client: "AuthHttpClient", loop: asyncio.AbstractEventLoop):
        self.client = client
        self.transport = None
        self.tls = None
        self.bytes_sent = 0  # TLSTransport counts what it writes
        self._tls_closing = False
        self._closed = False
        self._peer_eof = False
        self.chunk = memoryview(bytearray(4096))
        self.data = b""
        self.ready: asyncio.Future = loop.create_future()
        self.done: asyncio.Future | None = None  # the answer to the current request
        self.kept = False  # it served a request before
        self.settled = False  # its requester has taken the answer
        self.body_left: int | None = None  # body bytes to read away before the next request
        self.idle_timer: asyncio.TimerHandle | None = None
        self._failure: str | None = None

    # -- asyncio --------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        client = self.client
        if client.tls_context is None:
            self.ready.set_result(None)
            return
        name = client.ssl_name
        self._start_tls(TLSStream(client.tls_context, server_name=None if _ip_literal(
            name.encode()) else name, verify_name=name if client.tls_context.verify else None))

    def get_buffer(self, sizehint: int) -> memoryview:
        tls = self.tls
        return tls.input if tls is not None and not self._closed else self.chunk

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return
        if self.tls is not None:
            self._tls_input(nbytes)
        else:
            self._received(self.chunk[:nbytes])

    def eof_received(self) -> bool:
        self._peer_eof = True
        if self.tls is not None and not self._closed:
            self.tls.feed_eof()
            self._tls_input()
        if not self._closed:
            self._ended(None)
        return False

    def connection_lost(self, exc) -> None:
        self._ended(exc)
        if self.tls is not None:
            self.tls.close()

    # -- TLSTransport's callbacks --------------------------------------------------

    def _tls_established(self) -> bool:
        tls = self.tls
        if tls.context.verify:
            reason = tls.check_server_certificate(self.client.ssl_name)
            if reason is not None:
                self.log("error", reason)
                self._close(quiet=True)
                return False
        self.ready.set_result(None)
        return True

    def _tls_readable(self) -> None:
        while not self._closed:
            n = self.tls.recv_into(self.chunk)
            if not n:
                return
            self._received(self.chunk[:n])

    def _tls_peer_closed(self) -> None:
        self._ended(None)

    def log(self, level: str, message: str) -> None:
        """A TLS failure, told to whoever waits on this connection."""
        self._failure = message

    def _close(self, quiet: bool = True) -> None:
        self._ended(None)
        if self.transport is not None:
            self.transport.abort()

    # -- requests ------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self._closed and not self.transport.is_closing()

    async def request(self, request: bytes):
        """The answer's headers (``AuthResponse``), an ``AuthHttpError``, an exception,
        None (closed before the end of the headers) or ``_RETRY``."""
        self.data = b""
        self.settled = False
        self.done = asyncio.get_running_loop().create_future()
        self._write(request)
        try:
            return await self.done
        except BaseException:
            self.close()  # cancelled (timeout): the answer would come to nobody
            raise

    def _received(self, data) -> None:
        done = self.done
        if done is None or done.done():
            left = self.body_left
            if left is None or len(data) > left:
                self.close()  # bytes nobody asked for: the connection is not clean
                return
            self.body_left = left - len(data)
            if not self.body_left and self.settled:
                self.client.release(self)
            return
        self.data += data
        try:
            response = parse_response(self.data)
        except AuthHttpError as exc:
            done.set_result(exc)
            return
        if response is None:
            if len(self.data) > RESPONSE_LIMIT:
                done.set_result(AuthHttpError("invalid response"))
            return
        if self.client.keepalive:
            end = _answer_end(self.data)
            length = _kept_body(self.data[:end])
            if length is not None and len(self.data) - end <= length:
                self.body_left = length - (len(self.data) - end)
        done.set_result(response)

    def _ended(self, exc) -> None:
        """The connection ended (``exc``: how, if not cleanly)."""
        if self._closed:
            return
        self._closed = True
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self._failure is not None:
            exc = AuthTLSError(self._failure)
        if not self.ready.done():
            self.ready.set_result(exc or ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))
        done = self.done
        if done is not None and not done.done():
            if self.kept and not self.data and not isinstance(exc, AuthTLSError):
                done.set_result(_RETRY)
            else:
                done.set_result(exc)
        self.client.forget(self)

    def close(self) -> None:
        """Close now (after a request nobody waits for, or when no longer kept)."""
        self._ended(None)
        if self.transport is not None:
            self.transport.close()


class AuthTLSError(Exception):
    """The TLS handshake with an https auth server failed, or its certificate did."""


class AuthHttpClient:
    """The auth_http client of one worker for one auth server and its settings.

    A request goes on a connection of its own, closed after the answer, in nginx's
    HTTP/1.0 (``keepalive`` 0); or, with ``keepalive`` > 0, in HTTP/1.1 on an idle
    connection kept from an earlier request when there is one, up to ``keepalive``
    of them kept idle for at most ``keepalive_timeout`` seconds.  A kept connection
    that ends before any byte of the answer (the server closed it while idle) costs
    one retry on a fresh connection.  ``tls_context`` makes it ``https://``: the
    server's certificate must carry ``ssl_name`` (the URL's host by default).
    """

    def __init__(self, target: AuthHttpTarget, *, keepalive: int = 0,
                 keepalive_timeout: float = 60.0, tls_context=None, ssl_name: str = ""):
        self.target = target
        self.keepalive = keepalive
        self.keepalive_timeout = keepalive_timeout
        self.tls_context = tls_context
        self.ssl_name = ssl_name or target.host_header
        self._idle: list[_Connection] = []
        #: connections opened so far (what a test of keep-alive counts)
        self.opened = 0

    @classmethod
    def for_server(cls, config, tls_context=None) -> "AuthHttpClient":
        """The client for a server's ``auth_http*`` settings."""
        return cls(config.auth_http, keepalive=config.auth_http_keepalive,
                   keepalive_timeout=config.auth_http_keepalive_timeout,
                   tls_context=tls_context, ssl_name=config.auth_http_ssl_name)

    async def query(self, extra_headers: tuple[tuple[str, str], ...], timeout: float,
                    facts: AuthFacts, log: LogFunction, *, debug: bool = False):
        """Ask the auth server; the machine's auth result (internal error on failure).
        With ``debug``, the request and the answer's headers go to ``log`` at debug."""
        target = self.target
        service = "auth http server %s" % target.peer
        request = build_request(target, extra_headers, facts, keepalive=self.keepalive > 0)
        if debug:
            _log_request(request, extra_headers, log)
        try:
            async with asyncio.timeout(timeout):
                response = await self._exchange(request, service, log)
        except TimeoutError:
            log("error", "%s timed out (110: Connection timed out)" % service)
            return AuthInternalError()
        if response is None:
            return AuthInternalError()
        if debug:  # ngx_mail_auth_http_process_headers()'s lines
            for name, value in response.fields:
                log("debug", 'mail auth http header: "%s"'
                    % _debug_header(name, value, frozenset(_WITHHELD)))
            log("debug", "mail auth http header done")
        return decide(response, target.peer, log)

    async def _exchange(self, request: bytes, service: str, log: LogFunction):
        result = _RETRY
        while self._idle and result is _RETRY:
            conn = self._idle.pop()  # the most recently used: the least likely closed
            conn.idle_timer.cancel()
            if conn.usable:
                result = await conn.request(request)
                self._settle(conn)
        if result is _RETRY:
            conn = await self._connect(log)
            if conn is None:
                return None
            result = await conn.request(request)
            self._settle(conn)
            if result is _RETRY:
                result = None
        if isinstance(result, AuthHttpError):
            log("error", "%s sent %s" % (service, result))
            return None
        if isinstance(result, AuthTLSError):
            log("error", "%s: %s" % (service, result))
            return None
        if isinstance(result, BaseException):
            log("error", "recv() failed %s" % os_error_text(result))
            return None
        return result

    async def _connect(self, log: LogFunction) -> "_Connection | None":
        target = self.target
        loop = asyncio.get_running_loop()
        try:
            if target.family == socket.AF_UNIX:
                _, conn = await loop.create_unix_connection(lambda: _Connection(self, loop),
                                                            target.address)
            else:
                _, conn = await loop.create_connection(lambda: _Connection(self, loop),
                                                       target.address, target.port)
        except ConnectionRefusedError as exc:
            # nginx connects without blocking and sees the refusal on its first recv()
            log("error", "recv() failed %s" % os_error_text(exc))
            return None
        except OSError as exc:
            log("error", "connect() to %s failed %s" % (target.peer, os_error_text(exc)))
            return None
        self.opened += 1
        try:
            failure = await conn.ready
        except BaseException:
            conn.close()
            raise
        if failure is not None:
            conn.close()
            if isinstance(failure, AuthTLSError):
                log("error", "auth http server %s: %s" % (target.peer, failure))
            else:
                log("error", "recv() failed %s" % os_error_text(failure))
            return None
        return conn

    def _settle(self, conn: _Connection) -> None:
        """After an answer: keep the connection when its body is read (or comes later,
        see ``release``), else close it."""
        conn.kept = conn.settled = True
        if conn.body_left is None:
            conn.close()
        elif not conn.body_left:
            self.release(conn)

    def release(self, conn: _Connection) -> None:
        """``conn`` read its answer to the end: idle, kept or closed."""
        conn.body_left = None
        if not conn.usable or len(self._idle) >= self.keepalive:
            conn.close()
            return
        conn.idle_timer = asyncio.get_running_loop().call_later(self.keepalive_timeout, conn.close)
        self._idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        """``conn`` ended: never offered again."""
        if conn in self._idle:
            self._idle.remove(conn)

    def close(self) -> None:
        """Close the idle connections (the proxy stops)."""
        for conn in list(self._idle):
            conn.close()
        self._idle.clear()


_WITHHELD = (b"auth-pass",)  # the password (or CRAM-MD5/APOP digest), asked and answered


def _debug_header(name: bytes, value: bytes, withheld: frozenset[bytes]) -> str:
    """One header for a debug line: the value of a secret one shows as ``...``."""
    if name.lower() in withheld:
        value = b"..."
    return printable(b"%s: %s" % (name, value))


def _log_request(request: bytes, extra_headers: tuple[tuple[str, str], ...],
                 log: LogFunction) -> None:
    """The request's lines at debug (ngx_mail_auth_http_create_request()'s line), with
    the password and the ``auth_http_header`` values (shared keys) withheld."""
    withheld = frozenset(_WITHHELD) | {name.lower().encode("utf-8", "surrogateescape")
                                       for name, _ in extra_headers}
    lines = request.split(b"\r\n")
    log("debug", 'mail auth http request: "%s"' % printable(lines[0]))
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b": ")
            log("debug", 'mail auth http request header: "%s"'
                % _debug_header(name, value, withheld))


async def query(
    target: AuthHttpTarget,
    extra_headers: tuple[tuple[str, str], ...],
    timeout: float,
    facts: AuthFacts,
    log: LogFunction,
    *,
    debug: bool = False,
):
    """Ask the auth_http server as nginx does (a connection per request, HTTP/1.0); the
    machine's auth result (internal error on failure).  With ``debug``, the request and
    the answer's headers go to ``log`` at debug."""
    return await AuthHttpClient(target).query(extra_headers, timeout, facts, log, debug=debug)
