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
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Callable

from mailgate.auth.facts import AuthFacts
from mailgate.config import AuthHttpTarget
from mailgate.config.values import atoi
from mailgate.oserror import os_error_text
from mailgate.protocol import sasl
from mailgate.protocol.events import AuthFailed, AuthInternalError, AuthOK, AuthRetry

__all__ = [
    "AuthHttpError",
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


def build_request(target: AuthHttpTarget, extra_headers: tuple[tuple[str, str], ...], facts: AuthFacts) -> bytes:
    """The request bytes, exactly as nginx writes them."""
    out = [
        b"GET %s HTTP/1.0\r\n" % target.uri.encode("utf-8", "surrogateescape"),
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
    response = AuthResponse()
    for name, value in _header_fields(block):
        response.apply(name, value)
    return response


def _ip_literal(value: bytes) -> str | None:
    try:
        return str(ipaddress.ip_address(value.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return None


def decide(response: AuthResponse, peer: str, log: LogFunction):
    """The machine's auth result for an answer, with nginx's log lines.

    ``peer`` names the auth server (``127.0.0.1:9000``).  Whether a password is
    needed and missing is the machine's check, made when it receives AuthOK.
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
    upstream = "%s:%s" % (response.server.decode("ascii"), response.port.decode("ascii"))
    return AuthOK(server, port, response.user, response.password, upstream, peer)


class _Exchange(asyncio.BufferedProtocol):
    """One auth_http connection: the request written at once, the answer read until the
    end of its headers (at most RESPONSE_LIMIT bytes)."""

    def __init__(self, request: bytes, done: asyncio.Future):
        self.request = request
        self.done = done
        self.chunk = memoryview(bytearray(4096))
        self.data = b""

    def connection_made(self, transport) -> None:
        transport.write(self.request)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.chunk

    def buffer_updated(self, nbytes: int) -> None:
        if self.done.done():
            return
        self.data += self.chunk[:nbytes]
        try:
            response = parse_response(self.data)
        except AuthHttpError as exc:
            self.done.set_result(exc)
            return
        if response is not None:
            self.done.set_result(response)
        elif len(self.data) > RESPONSE_LIMIT:
            self.done.set_result(AuthHttpError("invalid response"))

    def eof_received(self) -> bool:
        if not self.done.done():
            self.done.set_result(None)  # closed before the end of the headers: no log line
        return False

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(exc)


async def _exchange(target: AuthHttpTarget, request: bytes, service: str, log: LogFunction):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    try:
        if target.family == socket.AF_UNIX:
            transport, _ = await loop.create_unix_connection(lambda: _Exchange(request, done),
                                                             target.address)
        else:
            transport, _ = await loop.create_connection(lambda: _Exchange(request, done),
                                                        target.address, target.port)
    except ConnectionRefusedError as exc:
        # nginx connects without blocking and sees the refusal on its first recv()
        log("error", "recv() failed %s" % os_error_text(exc))
        return None
    except OSError as exc:
        log("error", "connect() to %s failed %s" % (target.peer, os_error_text(exc)))
        return None
    try:
        result = await done
    finally:
        transport.close()
    if isinstance(result, AuthHttpError):
        log("error", "%s sent %s" % (service, result))
        return None
    if isinstance(result, BaseException):
        log("error", "recv() failed %s" % os_error_text(result))
        return None
    return result


async def query(
    target: AuthHttpTarget,
    extra_headers: tuple[tuple[str, str], ...],
    timeout: float,
    facts: AuthFacts,
    log: LogFunction,
):
    """Ask the auth_http server; the machine's auth result (internal error on failure)."""
    service = "auth http server %s" % target.peer
    request = build_request(target, extra_headers, facts)
    try:
        async with asyncio.timeout(timeout):
            response = await _exchange(target, request, service, log)
    except TimeoutError:
        log("error", "%s timed out (110: Connection timed out)" % service)
        return AuthInternalError()
    if response is None:
        return AuthInternalError()
    return decide(response, target.peer, log)
