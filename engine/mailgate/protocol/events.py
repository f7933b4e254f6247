"""What the protocol machines tell their caller, and what the caller tells them.

The machines are sans-I/O: every input method returns a list of *actions*, in
order, for the caller (the session layer) to carry out.  Secrets (passwords, SASL
responses) are kept out of every ``repr`` so that an action can be logged safely.

Actions of the client-facing machines (``ImapServer``, ``Pop3Server``, ``SmtpServer``):

* :class:`Send` bytes to the client, :class:`Close` the client connection once
  everything sent so far is written;
* :class:`ArmTimer` / :class:`DisarmTimer` the machine's one timer; when it fires the
  caller calls ``machine.timer_expired()``;
* :class:`StartTLS`: flush, then run the server-side TLS handshake on the client
  connection and call ``machine.tls_established()`` (or close on failure);
* :class:`AuthRequest`: authenticate (auth_http or an embedding hook), then call
  ``machine.auth_result()`` with an :class:`AuthOK`, :class:`AuthFailed`,
  :class:`AuthRetry` or :class:`AuthInternalError`;
* :class:`ConnectBackend`: connect to the backend and drive the backend login
  machine from ``machine.backend_login()``;
* :class:`Log`: an error-log line in nginx's level and wording
  (docs/nginx-behaviour.md#logging).  The caller adds the context (``while ACTION,
  client: …, server: …, login: …``); the action in force is in :attr:`Log.action`.

Actions of the backend login machines (``ImapBackendLogin`` …): :class:`SendUpstream`,
:class:`ArmTimer` / :class:`DisarmTimer` (the upstream timer), :class:`Log`,
:class:`StartTLSUpstream` (the backend agreed to STARTTLS: run the client-side TLS
handshake on the backend connection, then call ``machine.tls_established()``), and one
of :class:`LoginDone` (start relaying) or :class:`LoginFailed` (send its bytes to the
client, then close both connections).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``data`` to the client (in order with every other Send)."""

    data: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"Send({len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class SendUpstream:
    """Write ``data`` to the backend (it may hold the user's password)."""

    data: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"SendUpstream({len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection after everything sent so far has been written.

    ``timed_out`` is set when the close is caused by a timeout; nginx then shuts a
    TLS connection down quietly (no close_notify).
    """

    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class ArmTimer:
    """(Re)arm the machine's single timer to fire after ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class DisarmTimer:
    """Cancel the machine's timer if it is armed."""


@dataclass(frozen=True, slots=True)
class StartTLS:
    """Run the TLS handshake on the client connection (after flushing Sends)."""


@dataclass(frozen=True, slots=True)
class Log:
    """An error-log line: ``level`` is nginx's (``info``, ``error`` …)."""

    level: str
    message: str
    action: str | None = None


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """Credentials are complete: ask the auth service (ngx_mail_auth() in
    src/mail/ngx_mail_handler.c, then ngx_mail_auth_http_init() in
    src/mail/ngx_mail_auth_http_module.c).

    ``method`` is ``plain``, ``apop``, ``cram-md5``, ``external``, ``none``,
    ``xoauth2`` or ``oauthbearer`` (``password`` is then the bearer token);
    ``salt`` is the session salt with its CRLF (or None); ``login_attempt`` starts at
    1 and counts client-triggered requests.  ``sasl_host``/``sasl_port``: what an
    OAUTHBEARER client named of the server (or None).  ``imap_id`` is the IMAP
    client's ID parameter list as it sent it, with ``auth_http_pass_imap_id`` (or None).
    The SMTP fields are the verbatim HELO/EHLO argument and MAIL/RCPT lines (or None).
    """

    protocol: str
    method: str
    login: bytes
    password: bytes = field(repr=False)
    salt: bytes | None
    login_attempt: int
    sasl_host: bytes | None = None
    sasl_port: bytes | None = None
    imap_id: bytes | None = None
    smtp_helo: bytes | None = None
    smtp_from: bytes | None = None
    smtp_to: bytes | None = None


@dataclass(frozen=True, slots=True)
class AuthOK:
    """The auth service accepted: proxy to ``server:port``.

    ``user`` / ``password`` override the login and password used towards the
    backend (``Auth-User`` / ``Auth-Pass``); ``upstream`` is the backend's display
    name for logs (nginx prints ``Auth-Server:Auth-Port`` as sent); ``auth_server``
    names the auth service in error messages.  ``backend_tls`` (``on``, ``starttls``
    or ``off``: mailgate's ``Auth-SSL-Backend``) overrides the server's configured
    TLS to the backend for this session; None keeps it.
    """

    server: str
    port: int
    user: bytes | None = None
    password: bytes | None = field(default=None, repr=False)
    upstream: str | None = None
    auth_server: str = "auth"
    backend_tls: str | None = None


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """The auth service rejected the client (``Auth-Status`` text).

    ``wait`` > 0 keeps the session open and lets the client retry after that many
    seconds; ``error_code`` is SMTP's ``Auth-Error-Code`` (default ``535 5.7.0``).
    ``oauth_error``: the ``status``, ``schemes`` and ``scope`` of the JSON error an
    OAuth 2.0 client gets first (RFC 7628 section 3.2.2; auth_http's
    ``Auth-Error-Status``, ``-Schemes``, ``-Scope``), each only when given.
    """

    message: bytes
    wait: float = 0
    error_code: bytes | None = None
    oauth_error: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class AuthRetry:
    """``Auth-Status: WAIT``: ask again after ``wait`` seconds, nothing to the client."""

    wait: float = 0


@dataclass(frozen=True, slots=True)
class AuthInternalError:
    """The auth service failed (unreachable, timed out, malformed reply …)."""


@dataclass(frozen=True, slots=True)
class ConnectBackend:
    """Connect to the backend; then drive ``machine.backend_login()`` on it.

    ``tls`` is ``on`` (TLS from the first byte, after any PROXY header), ``starttls``
    (the login machine asks for it) or ``off``.
    """

    server: str
    port: int
    upstream: str
    tls: str = "off"


@dataclass(frozen=True, slots=True)
class StartTLSUpstream:
    """The backend agreed to STARTTLS: start the TLS handshake on the backend connection
    now, then call the login machine's ``tls_established()``.  Nothing the backend
    sent in the clear after its reply is kept (the machine dropped it)."""


@dataclass(frozen=True, slots=True)
class LoginDone:
    """Backend login finished: start relaying.

    ``to_client`` is the backend's final reply (or SMTP's synthesized
    ``235 2.0.0 OK``) still held in ``buffer``, the backend→client relay buffer;
    the client machine's ``buffer`` holds the client bytes pipelined after the
    login, which go to the backend.
    """

    buffer: Any = field(repr=False)

    @property
    def to_client(self) -> bytes:
        """A copy of the bytes the client must receive first."""
        return self.buffer.pending()


@dataclass(frozen=True, slots=True)
class LoginFailed:
    """Backend login failed: send ``to_client`` to the client, then close both sides."""

    to_client: bytes


AuthResult = AuthOK | AuthFailed | AuthRetry | AuthInternalError
