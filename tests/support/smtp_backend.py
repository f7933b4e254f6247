"""A real SMTP server (aiosmtpd) as the SMTP backend, recording exactly what it gets.

What it adds to aiosmtpd:

* XCLIENT as Postfix does it: advertised in EHLO, attributes xtext-decoded and
  recorded, the session reset, and a fresh ``220`` greeting as the answer;
* a record per connection: every raw byte received, every command line with its
  argument, the HELO/EHLO name, the XCLIENT attributes, the AUTH login, and each
  message's envelope (MAIL FROM, RCPT TO) with its DATA bytes as received: dot-unstuffed
  per RFC 5321 (lines are CRLF-delimited, so a bare LF stays inside its line);
* knobs a test flips: reject given recipients, reject every AUTH, long lines allowed;
* TLS (``tls=(chain, key)``): STARTTLS required before anything but EHLO/HELO/NOOP/QUIT,
  or with ``implicit_tls`` TLS from the first byte (SMTPS).

The server runs in a thread of the test process with its own event loop
(aiosmtpd's ``Controller``); it starts in milliseconds.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .ports import PortAllocator
from .procs import wait_until
from .users import DEFAULT_USERS, MailUser

__all__ = ["ReceivedMessage", "SmtpBackend", "SmtpConnection", "xtext_decode"]

XCLIENT_ATTRIBUTES = "NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT"
_XTEXT = re.compile(rb"\+([0-9A-Fa-f]{2})")


def xtext_decode(value: str) -> str:
    """Decode RFC 3461 xtext (``+XX`` hex escapes) as UTF-8 (surrogateescape)."""
    raw = _XTEXT.sub(
        lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8", "surrogateescape")
    )
    return raw.decode("utf-8", "surrogateescape")


@dataclass
class ReceivedMessage:
    """One accepted DATA: the envelope and the content exactly as received."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]
    helo: str | None
    login: str | None
    xclient: dict[str, str] | None


@dataclass
class SmtpConnection:
    """Everything one client connection did, in order."""

    peer: tuple[Any, ...]
    raw: bytearray = field(default_factory=bytearray)
    commands: list[tuple[str, str | None]] = field(default_factory=list)
    helo: str | None = None
    esmtp: bool = False
    xclient: dict[str, str] | None = None
    xclient_history: list[dict[str, str]] = field(default_factory=list)
    login: str | None = None
    auth_attempts: list[tuple[str, str]] = field(default_factory=list)  # (login, password)
    messages: list[ReceivedMessage] = field(default_factory=list)
    closed: bool = False

    def verbs(self) -> list[str]:
        """The command verbs in order, e.g. ``["EHLO", "XCLIENT", "EHLO", "MAIL"]``."""
        return [verb for verb, _ in self.commands]

    def command_lines(self) -> list[str]:
        """The commands as lines without CRLF: verb upper-cased, argument stripped
        (as aiosmtpd parsed them; :attr:`raw` has the exact bytes)."""
        return [verb if arg is None else f"{verb} {arg}" for verb, arg in self.commands]


class _RecordingSMTP(SMTP):
    """aiosmtpd's SMTP with XCLIENT and a per-connection record."""

    # aiosmtpd limits every line (command and DATA) to this; a recorder must take
    # whatever a proxy relays rather than police RFC 5321's 1000 octets.
    line_length_limit = 1024 * 1024

    def __init__(self, backend: SmtpBackend, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._backend = backend
        self.record: SmtpConnection | None = None
        # Wrap every command method once so each command is recorded before it runs;
        # aiosmtpd looks the method up in this dict per command.
        self._smtp_methods = {
            verb: self._recorded(verb, m) for verb, m in self._smtp_methods.items()
        }

    def _recorded(self, verb: str, method: Any) -> Any:
        async def run(arg: str | None) -> None:
            if self.record is not None:
                self.record.commands.append((verb, arg))
            await method(arg)

        return run

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.record = SmtpConnection(peer=transport.get_extra_info("peername"))
        self._backend._connections.append(self.record)

    def data_received(self, data: bytes) -> None:
        if self.record is not None:
            self.record.raw += data
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.record is not None:
            self.record.closed = True
        super().connection_lost(exc)

    async def smtp_XCLIENT(self, arg: str | None) -> None:
        """Postfix-style XCLIENT: record, reset the session, greet anew with 220."""
        assert self.session is not None and self.record is not None
        if not arg:
            await self.push("501 5.5.4 Syntax: XCLIENT attribute=value...")
            return
        if self._backend.reject_xclient:
            await self.push("550 5.7.0 Insufficient authorization")
            return
        attributes: dict[str, str] = {}
        for item in arg.split():
            name, sep, value = item.partition("=")
            if not sep or name.upper() not in XCLIENT_ATTRIBUTES.split():
                await self.push(f"501 5.5.4 Bad XCLIENT attribute: {name}")
                return
            attributes[name.upper()] = xtext_decode(value)
        self.record.xclient = attributes
        self.record.xclient_history.append(attributes)
        # Postfix forgets HELO, the envelope and AUTH and starts a new SMTP session.
        self.record.helo, self.record.esmtp, self.record.login = None, False, None
        self.session.host_name = None
        self.session.extended_smtp = False
        self.session.authenticated = False
        self._set_rset_state()
        await self.push(f"220 {self.hostname} {self._backend.greeting_text}")


class _Handler:
    """aiosmtpd hooks: recording, policies, and the XCLIENT advertisement."""

    def __init__(self, backend: SmtpBackend) -> None:
        self.backend = backend

    @staticmethod
    def _record(server: _RecordingSMTP) -> SmtpConnection:
        assert server.record is not None
        return server.record

    async def handle_HELO(
        self, server: _RecordingSMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        record = self._record(server)
        record.helo, record.esmtp = hostname, False
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_EHLO(
        self,
        server: _RecordingSMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        record = self._record(server)
        record.helo, record.esmtp = hostname, True
        session.host_name = hostname
        # Insert before the final "250 HELP" line, continuation form.
        return responses[:-1] + [f"250-XCLIENT {XCLIENT_ATTRIBUTES}"] + responses[-1:]

    async def handle_RCPT(
        self,
        server: _RecordingSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.backend.reject_rcpt.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(
        self, server: _RecordingSMTP, session: Session, envelope: Envelope
    ) -> str:
        record = self._record(server)
        content = envelope.original_content
        assert isinstance(content, bytes)
        record.messages.append(
            ReceivedMessage(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                data=content,
                mail_options=list(envelope.mail_options),
                helo=record.helo,
                login=record.login,
                xclient=dict(record.xclient) if record.xclient is not None else None,
            )
        )
        with self.backend._arrived:
            self.backend._arrived.notify_all()
        return "250 2.0.0 OK queued"


class _Controller(Controller):
    def __init__(self, backend: SmtpBackend, **kwargs: Any) -> None:
        self._backend = backend
        super().__init__(_Handler(backend), **kwargs)

    def factory(self) -> SMTP:
        backend = self._backend
        return _RecordingSMTP(
            backend,
            self.handler,
            hostname=backend.hostname,
            ident=backend.greeting_text,
            authenticator=backend._authenticate,
            auth_require_tls=False,
            data_size_limit=backend.data_size_limit,
            enable_SMTPUTF8=True,
            timeout=60,
            tls_context=backend.starttls_context,
            require_starttls=backend.starttls_context is not None,
        )


class SmtpBackend:
    """The recording SMTP backend on a loopback port.

    Example::

        smtp = SmtpBackend(ports, users=DEFAULT_USERS)
        smtp.start()
        smtp.reject_rcpt["nobody@example.test"] = "550 5.1.1 No such user"
        with smtplib.SMTP(smtp.host, smtp.port) as client:
            client.sendmail("a@b.test", ["c@d.test"], b"Subject: x\\r\\n\\r\\nhi\\r\\n")
        assert smtp.messages()[0].data == b"Subject: x\\r\\n\\r\\nhi\\r\\n"
        smtp.stop()
    """

    def __init__(
        self,
        ports: PortAllocator,
        *,
        users: Iterable[MailUser] = DEFAULT_USERS,
        host: str = "127.0.0.1",
        hostname: str = "backend.test",
        greeting_text: str = "ESMTP mailgate test backend",
        data_size_limit: int = 64 * 1024 * 1024,
        tls: tuple[str, str] | None = None,
        implicit_tls: bool = False,
    ) -> None:
        """``tls`` is ``(certificate chain, key)``: STARTTLS required, or with
        ``implicit_tls`` TLS from the first byte."""
        self.host = host
        self.tls_context: ssl.SSLContext | None = None
        if tls is not None:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(*tls)
        self.implicit_tls = implicit_tls
        self.hostname = hostname
        self.greeting_text = greeting_text
        self.data_size_limit = data_size_limit
        self.users = {u.login: u.password for u in users}
        self.reject_rcpt: dict[str, str] = {}
        """Recipient address (as in RCPT TO, without <>) → the reply to send instead of 250."""
        self.reject_auth = False
        """When true every AUTH fails with 535."""
        self.reject_xclient = False
        """When true XCLIENT is answered with 550."""
        self._ports = ports
        self.port = ports.port()
        self._connections: list[SmtpConnection] = []
        self._arrived = threading.Condition()
        self._controller: _Controller | None = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login = auth_data.login.decode("utf-8", "surrogateescape")
        password = auth_data.password.decode("utf-8", "surrogateescape")
        assert isinstance(server, _RecordingSMTP) and server.record is not None
        server.record.auth_attempts.append((login, password))
        if self.reject_auth or self.users.get(login) != password:
            return AuthResult(success=False, handled=False)
        server.record.login = login
        return AuthResult(success=True, auth_data=auth_data)

    @property
    def starttls_context(self) -> ssl.SSLContext | None:
        """The context STARTTLS uses (None without it)."""
        return None if self.implicit_tls else self.tls_context

    def start(self) -> None:
        """Start serving (in a thread); clears records of the start-up probe."""
        implicit = self.tls_context if self.implicit_tls else None
        self._controller = _Controller(self, hostname=self.host, port=self.port, ready_timeout=10,
                                       ssl_context=implicit)
        self._controller.start()
        # The controller's start-up probe connection is not the test's business.
        wait_until(lambda: bool(self._connections), 2.0)
        self.clear()

    def stop(self) -> None:
        """Stop the server thread and release the port."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        self._ports.release(self.port)

    def clear(self) -> None:
        """Forget all recorded connections and reset the policies."""
        self._connections.clear()
        self.reject_rcpt.clear()
        self.reject_auth = False
        self.reject_xclient = False

    def connections(self) -> list[SmtpConnection]:
        """Recorded connections, oldest first."""
        return list(self._connections)

    def messages(self) -> list[ReceivedMessage]:
        """Every accepted message, in arrival order."""
        return [m for c in self._connections for m in c.messages]

    def wait_for_messages(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Wait until at least ``count`` messages arrived; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.messages())} of {count} messages arrived")
                self._arrived.wait(left)
        return self.messages()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
