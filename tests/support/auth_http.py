"""A real HTTP/1.0 auth_http server on loopback whose answers the test decides; an
HTTP/1.1 request keeps its connection (a kept-alive client), and with ``tls`` it serves
HTTPS.

Each request is recorded raw (bytes, as nginx or mailgate sent it) and parsed into
an :class:`AuthRequest`; the server's *policy* (any callable ``AuthRequest -> answer``)
picks the answer:

* :class:`Reply` — a status line and headers (optionally after a delay);
* :class:`RawReply` — arbitrary bytes: malformed, oversized, split, no status line;
* :class:`CloseReply` — close the connection without answering;
* :class:`NoReply` — keep the connection open and never answer (auth_http_timeout).

:class:`DefaultPolicy` answers like a real auth server for the known users, and
:class:`SequencePolicy` scripts a series of answers (e.g. ``WAIT`` then ``OK``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Self

from .ports import PortAllocator
from .users import MailUser

__all__ = [
    "NGINX_HEADER_ORDER",
    "AuthHttpServer",
    "AuthRequest",
    "CloseReply",
    "DefaultPolicy",
    "NoReply",
    "Policy",
    "RawReply",
    "Reply",
    "SequencePolicy",
    "unescape",
]

_MAX_REQUEST = 256 * 1024

NGINX_HEADER_ORDER: tuple[str, ...] = (
    "Host",
    "Auth-Method",
    "Auth-User",
    "Auth-Pass",
    "Auth-Salt",
    "Auth-Protocol",
    "Auth-Login-Attempt",
    "Client-IP",
    "Client-Host",
    "Proxy-Protocol-Addr",
    "Proxy-Protocol-Port",
    "Proxy-Protocol-Server-Addr",
    "Proxy-Protocol-Server-Port",
    "Auth-SMTP-Helo",
    "Auth-SMTP-From",
    "Auth-SMTP-To",
    "Auth-SSL",
    "Auth-SSL-Protocol",
    "Auth-SSL-Cipher",
    "Auth-SSL-Verify",
    "Auth-SSL-Subject",
    "Auth-SSL-Issuer",
    "Auth-SSL-Serial",
    "Auth-SSL-Fingerprint",
    "Auth-SSL-Cert",
)
"""The order in which nginx sends the headers it generates
(ngx_mail_auth_http_create_request() in src/mail/ngx_mail_auth_http_module.c;
docs/nginx-behaviour.md#auth_http-request); the ``auth_http_header`` extras follow them
in configuration order."""
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def unescape(value: str) -> str:
    """Undo nginx's ``%XX`` escaping of Auth-User/Auth-Pass/Auth-SSL-Cert (UTF-8)."""
    raw = value.encode("utf-8", "surrogateescape")
    return _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), raw).decode(
        "utf-8", "surrogateescape"
    )


@dataclass(frozen=True)
class AuthRequest:
    """One request as received: ``raw`` bytes and the parsed pieces.

    Header values are decoded as UTF-8 (surrogateescape, so any byte survives) and
    kept exactly as sent, i.e. still escaped; :attr:`login` and :attr:`password` are
    the unescaped Auth-User and Auth-Pass.
    """

    raw: bytes
    method: str
    uri: str
    version: str
    headers: tuple[tuple[str, str], ...]
    complete: bool
    peer: tuple[str, int]
    received_at: float

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def header_names(self) -> list[str]:
        """Header names in the order they were sent."""
        return [name for name, _ in self.headers]

    def generated_headers(self) -> list[str]:
        """The names before the first ``auth_http_header`` extra, checked to be in
        nginx's order (:data:`NGINX_HEADER_ORDER`); raises AssertionError if not."""
        names = self.header_names
        known = [n for n in names if n in NGINX_HEADER_ORDER]
        if names[: len(known)] != known:
            raise AssertionError(f"an extra header comes before nginx's own: {names}")
        ranks = [NGINX_HEADER_ORDER.index(n) for n in known]
        if ranks != sorted(set(ranks)):
            raise AssertionError(f"headers out of nginx's order or repeated: {known}")
        return known

    @property
    def auth_method(self) -> str:
        """Auth-Method (plain, apop, cram-md5, external, none)."""
        return self.header("Auth-Method") or ""

    @property
    def protocol(self) -> str:
        """Auth-Protocol (imap, pop3, smtp)."""
        return self.header("Auth-Protocol") or ""

    @property
    def login(self) -> str:
        """Auth-User, unescaped."""
        return unescape(self.header("Auth-User") or "")

    @property
    def password(self) -> str:
        """Auth-Pass, unescaped."""
        return unescape(self.header("Auth-Pass") or "")

    @property
    def salt(self) -> str | None:
        """Auth-Salt without its line end, or None."""
        return self.header("Auth-Salt")

    @property
    def attempt(self) -> int:
        """Auth-Login-Attempt as a number (0 when absent)."""
        value = self.header("Auth-Login-Attempt")
        return int(value) if value and value.isdigit() else 0

    @classmethod
    def parse(cls, raw: bytes, peer: tuple[str, int], complete: bool) -> AuthRequest:
        """Parse raw request bytes leniently: a broken request is recorded, not refused."""
        head = raw.split(b"\r\n\r\n", 1)[0]
        lines = head.decode("utf-8", "surrogateescape").split("\r\n")
        parts = lines[0].split(" ")
        method, uri, version = (parts + ["", "", ""])[:3]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.lstrip(" ")))
        return cls(raw, method, uri, version, tuple(headers), complete, peer, time.time())


def _header_bytes(headers: Sequence[tuple[str, str | int]]) -> bytes:
    return b"".join(
        f"{name}: {value}\r\n".encode("utf-8", "surrogateescape") for name, value in headers
    )


@dataclass(frozen=True)
class Reply:
    """A well-formed answer: ``status_line`` (None: no status line), headers, empty line."""

    headers: Sequence[tuple[str, str | int]] = ()
    status_line: str | None = "HTTP/1.0 200 OK"
    body: bytes = b""
    delay: float = 0.0

    def to_bytes(self) -> bytes:
        """The answer's bytes."""
        status = (self.status_line + "\r\n").encode() if self.status_line is not None else b""
        return status + _header_bytes(self.headers) + b"\r\n" + self.body

    def kept_alive(self) -> Reply:
        """The same answer for an HTTP/1.1 request on a kept connection: HTTP/1.1 with
        the body's length (RFC 9112 section 6.3)."""
        status = "HTTP/1.1 " + (self.status_line or "HTTP/1.0 200 OK").split(" ", 1)[1]
        headers = [*self.headers, ("Content-Length", len(self.body))]
        return Reply(headers, status, self.body, self.delay)


@dataclass(frozen=True)
class RawReply:
    """Exactly these bytes, in ``chunks`` separate sends ``pause`` seconds apart."""

    data: bytes
    delay: float = 0.0
    chunks: int = 1
    pause: float = 0.05


@dataclass(frozen=True)
class CloseReply:
    """Close the connection (after ``delay``) without sending anything."""

    delay: float = 0.0


@dataclass(frozen=True)
class NoReply:
    """Send nothing and keep the connection open until the client closes it
    (or ``hold`` seconds pass, or the server stops)."""

    hold: float = 60.0


Answer = Reply | RawReply | CloseReply | NoReply
Policy = Callable[[AuthRequest], Answer]


@dataclass
class DefaultPolicy:
    """Answers like a production auth server for ``users``.

    Success: ``Auth-Status: OK``, ``Auth-Server``/``Auth-Port`` from ``backends`` by
    Auth-Protocol, and ``Auth-Pass`` with the clear-text password (so APOP, CRAM-MD5
    and EXTERNAL logins can log in to the backend).  Failure: ``Auth-Status:
    Invalid login or password``, plus ``Auth-Wait`` when ``wait`` is set and
    ``Auth-Error-Code`` for SMTP.  ``smtp_auth none`` (Auth-Method none) is always let
    through to the SMTP backend.

    Example::

        policy = DefaultPolicy(users, {"imap": ("127.0.0.1", 1143)}, wait=1)
    """

    users: Mapping[str, str] | Iterable[MailUser]
    backends: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    wait: int | None = None
    smtp_error_code: str | None = "535 5.7.8"
    message: str = "Invalid login or password"
    extra_headers: Sequence[tuple[str, str]] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.users, Mapping):
            self.users = {u.login: u.password for u in self.users}

    def verify(self, request: AuthRequest) -> str | None:
        """The user's password when the request's credentials are right, else None."""
        users = self.users
        assert isinstance(users, Mapping)
        password = users.get(request.login)
        method = request.auth_method
        if method == "none":
            return ""
        if password is None:
            return None
        if method == "plain":
            ok = request.password == password
        elif method == "apop":
            digest = hashlib.md5((request.salt or "").encode() + password.encode()).hexdigest()
            ok = hmac.compare_digest(request.password, digest)
        elif method == "cram-md5":
            mac = hmac.new(
                password.encode(), (request.salt or "").encode(), hashlib.md5
            ).hexdigest()
            ok = hmac.compare_digest(request.password, mac)
        elif method == "external":
            ok = request.header("Auth-SSL-Verify") == "SUCCESS"
        else:
            ok = False
        return password if ok else None

    def __call__(self, request: AuthRequest) -> Answer:
        password = self.verify(request)
        backend = self.backends.get(request.protocol)
        if password is None or backend is None:
            headers: list[tuple[str, str | int]] = [("Auth-Status", self.message)]
            if self.wait is not None:
                headers.append(("Auth-Wait", self.wait))
            if request.protocol == "smtp" and self.smtp_error_code:
                headers.append(("Auth-Error-Code", self.smtp_error_code))
            return Reply(headers + list(self.extra_headers))
        headers = [("Auth-Status", "OK"), ("Auth-Server", backend[0]), ("Auth-Port", backend[1])]
        if password:
            headers.append(("Auth-Pass", password))
        return Reply(headers + list(self.extra_headers))


class SequencePolicy:
    """Answers from a script, one per request, then ``then`` for the rest.

    Example — ``WAIT`` once, then the default answer::

        SequencePolicy([Reply([("Auth-Status", "WAIT"), ("Auth-Wait", 1)])], then=default)
    """

    def __init__(self, answers: Iterable[Answer | Policy], then: Policy | None = None) -> None:
        self._answers = list(answers)
        self._then = then
        self._lock = threading.Lock()

    def __call__(self, request: AuthRequest) -> Answer:
        with self._lock:
            step = self._answers.pop(0) if self._answers else None
        if step is None:
            if self._then is None:
                raise RuntimeError("SequencePolicy ran out of answers")
            return self._then(request)
        return step(request) if callable(step) else step


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        owner = self.server.owner
        sock: socket.socket = self.request
        sock.settimeout(owner.read_timeout)
        with owner._open_lock:
            owner.accepted += 1
        if owner.tls is not None:
            try:
                sock = owner.tls.wrap_socket(sock, server_side=True)
            except OSError as exc:  # e.g. the client refused our certificate
                owner.handshake_failures.append(exc)
                return
        owner._track(sock, True)
        try:
            first = True
            while True:
                raw, complete = self._read(sock)
                if not raw and not first:
                    return  # the client closed its kept connection
                first = False
                request = AuthRequest.parse(raw, self.client_address, complete)
                owner._record(request)
                if not complete:
                    return
                try:
                    answer = owner.policy(request)
                except Exception as exc:  # noqa: BLE001 - a broken policy is a test bug: shown at teardown
                    owner.errors.append(exc)
                    return
                kept = (owner.keepalive and isinstance(answer, Reply)
                        and raw.split(b"\r\n", 1)[0].endswith(b" HTTP/1.1"))
                if kept:
                    answer = answer.kept_alive()
                self._answer(sock, answer, owner._stopping)
                if not kept or not self._idle(sock, owner):
                    return
        finally:
            owner._track(sock, False)

    @staticmethod
    def _idle(sock: socket.socket, owner: AuthHttpServer) -> bool:
        """Between two requests on a kept connection: False when the server closes it
        (``idle_close`` seconds without a request)."""
        if owner.idle_close is None:
            return True
        sock.settimeout(owner.idle_close)
        try:
            data = sock.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            return False
        except OSError:
            return False
        finally:
            sock.settimeout(owner.read_timeout)
        return bool(data)

    @staticmethod
    def _read(sock: socket.socket) -> tuple[bytes, bool]:
        buf = bytearray()
        while b"\r\n\r\n" not in buf and len(buf) < _MAX_REQUEST:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        return bytes(buf), b"\r\n\r\n" in buf

    @staticmethod
    def _answer(sock: socket.socket, answer: Answer, stopping: threading.Event) -> None:
        if isinstance(answer, NoReply):
            sock.settimeout(0.1)
            deadline = time.monotonic() + answer.hold
            while not stopping.is_set() and time.monotonic() < deadline:
                try:
                    if not sock.recv(4096):
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return
            return
        if stopping.wait(answer.delay):
            return
        try:
            if isinstance(answer, Reply):
                sock.sendall(answer.to_bytes())
            elif isinstance(answer, RawReply):
                size = max(1, -(-len(answer.data) // max(1, answer.chunks)))
                for start in range(0, len(answer.data), size):
                    if start and stopping.wait(answer.pause):
                        return
                    sock.sendall(answer.data[start : start + size])
            # CloseReply: nothing to send.
        except OSError:
            pass  # the client gave up (e.g. auth_http_timeout): nothing to do


class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: AuthHttpServer, address: tuple[str, int]) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class AuthHttpServer:
    """The auth_http server; :attr:`url` goes into ``auth_http``.

    Example::

        auth = AuthHttpServer(ports, DefaultPolicy(DEFAULT_USERS, backends))
        auth.start()
        conf = f"auth_http {auth.url};"
        ...
        req = auth.requests[0]
        assert req.header_names[:3] == ["Host", "Auth-Method", "Auth-User"]
        auth.policy = lambda req: CloseReply()
        auth.stop()
    """

    def __init__(
        self,
        ports: PortAllocator,
        policy: Policy,
        *,
        host: str = "127.0.0.1",
        path: str = "/auth",
        read_timeout: float = 10.0,
        tls: tuple[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        """``tls`` is ``(certificate chain, key)``: serve HTTPS.  ``port`` reuses a port
        (a server started again where one died)."""
        self.host = host
        #: connections accepted (a kept-alive client opens few)
        self.accepted = 0
        #: HTTP/1.1 requests keep their connection (answered with Content-Length)
        self.keepalive = True
        #: close a kept connection after this many idle seconds (None: never)
        self.idle_close: float | None = None
        self.handshake_failures: list[Exception] = []
        self.tls: ssl.SSLContext | None = None
        if tls is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(*tls)
        self.path = path
        self.policy = policy
        self.read_timeout = read_timeout
        self.requests: list[AuthRequest] = []
        self.errors: list[Exception] = []
        self._ports = ports
        self.port = port or ports.port()
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._arrived = threading.Condition()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    @property
    def url(self) -> str:
        """``host:port/path`` as written after ``auth_http`` (``https://...`` with TLS)."""
        scheme = "https://" if self.tls is not None else ""
        return f"{scheme}{self.host}:{self.port}{self.path}"

    def _record(self, request: AuthRequest) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()

    def _track(self, sock: socket.socket, opened: bool) -> None:
        with self._open_lock:
            (self._open.add if opened else self._open.discard)(sock)

    def wait_for_requests(self, count: int = 1, timeout: float = 10.0) -> list[AuthRequest]:
        """Wait until ``count`` requests were recorded; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.requests)} of {count} auth requests arrived")
                self._arrived.wait(left)
            return list(self.requests)

    def start(self) -> None:
        """Listen and serve in a background thread."""
        self._server = _TCPServer(self, (self.host, self.port))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"auth_http:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, release: bool = True) -> None:
        """Stop serving, cut open connections, release the port (unless not ``release``:
        a server started again on it follows)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._open_lock:
            for sock in list(self._open):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if release:
            self._ports.release(self.port)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
