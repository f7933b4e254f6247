"""Authentication methods as nginx's mail proxy knows them: the one table.

:data:`METHODS` holds every value of the ``imap_auth``, ``pop3_auth`` and ``smtp_auth``
directives, in nginx's bit order (``NGX_MAIL_AUTH_*_ENABLED`` in src/mail/ngx_mail.h):
the SASL mechanisms PLAIN, LOGIN, CRAM-MD5 and EXTERNAL (:class:`Mechanism`) and the
two methods that are not SASL (:class:`Method`): POP3's ``APOP`` command and SMTP's
``none``, mail relayed without authentication.  An entry says which protocols offer
it and which directive value enables it there, what goes to auth_http and how the
backend login replays it; a mechanism adds its name, how its exchange runs
(:class:`Exchange`) and the command buffer it needs.  The directive value lists, the
capability lines, the command buffers, the AUTH/AUTHENTICATE handling of the three
machines, the auth_http request and the backend login derive from it.

An exchange decodes each client response and either returns the credentials or
raises :class:`SaslRejected` carrying nginx's info-level log text; the stored login
and password only change on success (nginx 1.29.1+).  The machines add their prompt
prefix (``+ `` or ``334 ``) to a challenge.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple, Protocol

__all__ = [
    "APOP", "AUTH_SALT", "CRAM_MD5", "EXTERNAL", "LOGIN", "MECHANISMS", "METHODS", "NONE",
    "PASSWORD_PROMPT", "PLAIN", "PROTOCOL_LOGIN", "RELAY", "SMTP_ENVELOPE",
    "USERNAME_PROMPT", "Challenge", "Credentials", "Exchange", "Mechanism", "Method",
    "SaslRejected", "Session", "by_auth_method", "command_buffer", "decode_cram_md5",
    "decode_external", "decode_login_password", "decode_login_username", "decode_plain",
    "directive_summary", "keywords", "make_salt", "offered", "parse_auth", "server_buffer",
]

# the base64 of "Username:" and "Password:", the LOGIN prompts
USERNAME_PROMPT = b"VXNlcm5hbWU6"
PASSWORD_PROMPT = b"UGFzc3dvcmQ6"

PROTOCOLS = ("imap", "pop3", "smtp")

# extra auth_http request headers a method sends (ngx_mail_auth_http_create_request())
AUTH_SALT = "Auth-Salt"                         # the session salt, for digests
SMTP_ENVELOPE = ("Auth-SMTP-Helo", "Auth-SMTP-From", "Auth-SMTP-To")

# how the backend login replays a method (src/mail/ngx_mail_proxy_module.c)
PROTOCOL_LOGIN = "login"    # the protocol's own login with the user name and password:
#                             IMAP LOGIN with literals, POP3 USER and PASS, SMTP
#                             XCLIENT LOGIN= or, with proxy_smtp_auth, AUTH PLAIN
RELAY = "relay"             # SMTP: the client's MAIL FROM and RCPT TO, as they came


class SaslRejected(Exception):
    """A client response was not acceptable; ``str()`` is nginx's log text."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a finished SASL exchange yields (``method`` as sent to auth_http)."""

    method: str
    login: bytes
    password: bytes

    def __repr__(self) -> str:
        return f"Credentials(method={self.method!r}, login={self.login!r})"


# -- exchanges ---------------------------------------------------------------------


class Challenge(NamedTuple):
    """Send ``payload`` after the protocol's prompt, then read the client's next line.

    ``step`` names what that line answers (the machine keeps it in ``mail_state``);
    ``login`` is the login as known so far (LOGIN's user name), stored at once as nginx
    does; ``last`` is False when the answer will be followed by another challenge.
    """

    payload: bytes
    step: str
    login: bytes | None = None
    last: bool = True


class Session(Protocol):
    """What an exchange may use of the client-facing machine running it."""

    login: bytes

    def decode_base64(self, data: bytes) -> bytes | None: ...

    def encode_base64(self, data: bytes) -> bytes: ...

    def session_salt(self) -> bytes:
        """The session salt with its CRLF, made on first use."""
        ...


class Exchange:
    """How a mechanism's exchange runs on the server, one step at a time.

    Each step returns a :class:`Challenge` (send it, wait for the next line) or the
    :class:`Credentials` (ask auth_http), or raises :class:`SaslRejected`.
    """

    def begin(self, session: Session, initial: bytes | None) -> Challenge | Credentials:
        """The AUTH/AUTHENTICATE command, with its initial response (or None)."""
        raise NotImplementedError

    def respond(self, session: Session, step: str, response: bytes
                ) -> Challenge | Credentials:
        """A client line answering the challenge of ``step``."""
        raise NotImplementedError

    def failed(self, session: Session, message: bytes) -> Challenge | None:
        """auth_http refused the credentials (``message``): None to send the protocol's
        failure reply at once, as nginx does, or a challenge to send first; the client's
        answer to it is then read and the reply follows (RFC 7628 section 3.2.2)."""
        return None


# what the client's line answers in a one-response exchange
RESPONSE = "response"


class OneResponse(Exchange):
    """One client response, given with the command or after one fixed challenge."""

    def __init__(self, decode: Callable[[bytes, Callable], Credentials],
                 prompt: bytes = b"") -> None:
        self._decode = decode
        self._challenge = Challenge(prompt, RESPONSE)

    def challenge(self, session: Session) -> Challenge:
        return self._challenge

    def begin(self, session: Session, initial: bytes | None) -> Challenge | Credentials:
        if initial is None:
            return self.challenge(session)
        return self._decode(initial, session.decode_base64)

    def respond(self, session: Session, step: str, response: bytes) -> Credentials:
        return self._decode(response, session.decode_base64)


class CramMd5Exchange(OneResponse):
    """The challenge is the base64 of the session salt without its CRLF
    (ngx_mail_auth_cram_md5_salt() in src/mail/ngx_mail_handler.c)."""

    def challenge(self, session: Session) -> Challenge:
        return Challenge(session.encode_base64(session.session_salt()[:-2]), RESPONSE)


class LoginExchange(Exchange):
    """The user name, then the password, each asked for with its prompt; the user name
    may come with the command (ngx_mail_auth_login_username() and
    ngx_mail_auth_login_password() in src/mail/ngx_mail_handler.c)."""

    USERNAME = "username"
    PASSWORD = "password"
    _ASK_USERNAME = Challenge(USERNAME_PROMPT, USERNAME, last=False)

    def begin(self, session: Session, initial: bytes | None) -> Challenge:
        if initial is None:
            return self._ASK_USERNAME
        return self._username(session, initial)

    def respond(self, session: Session, step: str, response: bytes
                ) -> Challenge | Credentials:
        if step == self.USERNAME:
            return self._username(session, response)
        return decode_login_password(session.login, response, session.decode_base64)

    def _username(self, session: Session, response: bytes) -> Challenge:
        login = decode_login_username(response, session.decode_base64)
        return Challenge(PASSWORD_PROMPT, self.PASSWORD, login=login)


def decode_plain(response: bytes, decode) -> Credentials:
    """``authzid NUL authcid NUL passwd``; the authzid is ignored."""
    plain = _decode(response, decode, "PLAIN")
    first = plain.find(b"\0")
    if first < 0 or first + 1 == len(plain):
        raise SaslRejected("client sent invalid login in AUTH PLAIN command")
    second = plain.find(b"\0", first + 1)
    if second < 0:
        raise SaslRejected("client sent invalid password in AUTH PLAIN command")
    return Credentials("plain", plain[first + 1:second], plain[second + 1:])


def decode_login_username(response: bytes, decode) -> bytes:
    """The AUTH LOGIN user name line (an empty line is an empty name)."""
    return _decode(response, decode, "LOGIN")


def decode_login_password(login: bytes, response: bytes, decode) -> Credentials:
    """The AUTH LOGIN password line."""
    return Credentials("plain", login, _decode(response, decode, "LOGIN"))


def decode_cram_md5(response: bytes, decode) -> Credentials:
    """``login SP digest``: split at the first space; the digest must be 32 bytes.

    nginx does not verify the digest; it goes to the auth service as the password.
    """
    plain = _decode(response, decode, "CRAM-MD5")
    space = plain.find(b" ")
    if space < 0 or len(plain) - space - 1 != 32:
        raise SaslRejected("client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command")
    return Credentials("cram-md5", plain[:space], plain[space + 1:])


def decode_external(response: bytes, decode) -> Credentials:
    """The EXTERNAL authorization identity (may be empty); no password."""
    return Credentials("external", _decode(response, decode, "EXTERNAL"), b"")


def _decode(data: bytes, decode: Callable[[bytes], bytes | None], mechanism: str) -> bytes:
    plain = decode(data)
    if plain is None:
        raise SaslRejected(
            f"client sent invalid base64 encoding in AUTH {mechanism} command")
    return plain


# -- the table ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Method:
    """A value of the ``*_auth`` directives: what it enables, what goes to auth_http and
    to the backend.

    ``protocols`` offer it; there it is enabled by ``keyword``, or by the value
    ``enabled_by`` names for a protocol whose directive lacks the keyword (POP3 has no
    ``login``: LOGIN comes with ``plain``).  ``auth_method`` is the Auth-Method header,
    ``auth_fields`` the extra request headers it sends.  ``backend_password``: the
    client's password logs in to the backend (otherwise auth_http must send Auth-Pass,
    ngx_mail_auth_http_process_headers()).  ``replay`` is how the backend login goes
    (:data:`PROTOCOL_LOGIN` or :data:`RELAY`).  ``notes`` annotate the keyword in a
    protocol's directive documentation.
    """

    keyword: str
    protocols: tuple[str, ...]
    enabled_by: Mapping[str, str] = field(default_factory=dict)
    auth_method: str
    auth_fields: tuple[str, ...] = ()
    backend_password: bool = False
    replay: str = PROTOCOL_LOGIN
    notes: Mapping[str, str] = field(default_factory=dict)

    def enabled(self, protocol: str, methods: Collection[str]) -> bool:
        """Whether a server of ``protocol`` with these ``*_auth`` values enables it."""
        return protocol in self.protocols and self.enabling_keyword(protocol) in methods

    def enabling_keyword(self, protocol: str) -> str:
        return self.enabled_by.get(protocol, self.keyword)

    @property
    def salted(self) -> bool:
        """Whether it works on the session salt (a digest of salt and password)."""
        return AUTH_SALT in self.auth_fields


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Mechanism(Method):
    """A SASL mechanism: ``name`` in AUTH/AUTHENTICATE and in the capabilities.

    ``exchange`` runs it; ``initial_response``: the command may carry the first
    response.  ``refused_when_disabled``: without its directive value the command is
    refused, not only left out of the capabilities (nginx accepts PLAIN and LOGIN
    always).  ``min_buffer``: a server offering it reads commands into a buffer of at
    least this many bytes.
    """

    name: bytes
    exchange: Exchange
    initial_response: bool = True
    refused_when_disabled: bool = True
    min_buffer: int = 0


# RFC 4616; IMAP LOGIN and POP3 USER/PASS are this method too (nginx's
# NGX_MAIL_AUTH_PLAIN), which is why "plain" is Auth-Method for them
PLAIN = Mechanism(
    name=b"PLAIN", keyword="plain", protocols=PROTOCOLS,
    exchange=OneResponse(decode_plain), refused_when_disabled=False,
    auth_method="plain", backend_password=True,
    notes={"pop3": "USER/PASS, AUTH PLAIN and LOGIN"})

# draft-murchison-sasl-login; Auth-Method is "plain" (ngx_mail_auth_http_method[])
LOGIN = Mechanism(
    name=b"LOGIN", keyword="login", protocols=PROTOCOLS, enabled_by={"pop3": "plain"},
    exchange=LoginExchange(), refused_when_disabled=False,
    auth_method="plain", backend_password=True)

# RFC 1939 section 7: not SASL, the APOP command with the digest of the greeting's
# salt and the password (ngx_mail_pop3_apop() in src/mail/ngx_mail_pop3_handler.c)
APOP = Method(keyword="apop", protocols=("pop3",), auth_method="apop",
              auth_fields=(AUTH_SALT,))

# RFC 2195: the digest of the salt and the password goes to auth_http unverified
CRAM_MD5 = Mechanism(
    name=b"CRAM-MD5", keyword="cram-md5", protocols=PROTOCOLS,
    exchange=CramMd5Exchange(decode_cram_md5), initial_response=False,
    auth_method="cram-md5", auth_fields=(AUTH_SALT,))

# RFC 4422 appendix A: the authorization identity (the TLS client certificate is
# auth_http's to check); a prompt for a user name when it does not come with the command
EXTERNAL = Mechanism(
    name=b"EXTERNAL", keyword="external", protocols=PROTOCOLS,
    exchange=OneResponse(decode_external, USERNAME_PROMPT),
    auth_method="external")

# not SASL: an SMTP client that sends MAIL FROM and RCPT TO without authenticating
# (ngx_mail_smtp_mail() and ngx_mail_smtp_rcpt() in src/mail/ngx_mail_smtp_handler.c)
NONE = Method(keyword="none", protocols=("smtp",), auth_method="none",
              auth_fields=SMTP_ENVELOPE, replay=RELAY,
              notes={"smtp": "unauthenticated relay through MAIL/RCPT"})

METHODS: tuple[Method, ...] = (PLAIN, LOGIN, APOP, CRAM_MD5, EXTERNAL, NONE)
MECHANISMS: tuple[Mechanism, ...] = tuple(m for m in METHODS if isinstance(m, Mechanism))

_BY_NAME = {p: {m.name: m for m in MECHANISMS if p in m.protocols} for p in PROTOCOLS}
_BY_AUTH_METHOD: dict[str, Method] = {}
for _method in METHODS:
    _BY_AUTH_METHOD.setdefault(_method.auth_method, _method)
del _method


# -- what derives from it ------------------------------------------------------------


def keywords(protocol: str) -> tuple[str, ...]:
    """The values the protocol's ``*_auth`` directive accepts, in nginx's order."""
    return tuple(m.keyword for m in METHODS
                 if protocol in m.protocols and protocol not in m.enabled_by)


def directive_summary(protocol: str) -> str:
    """The values of the protocol's ``*_auth`` directive with their notes, for docs."""
    notes = {m.keyword: m.notes[protocol] for m in METHODS if protocol in m.notes}
    return " ".join(f"{k} ({notes[k]})" if k in notes else k for k in keywords(protocol))


@lru_cache(maxsize=256)
def offered(protocol: str, methods: frozenset[str]) -> tuple[Mechanism, ...]:
    """The mechanisms a server announces, in nginx's fixed capability order."""
    return tuple(m for m in MECHANISMS if m.enabled(protocol, methods))


def command_buffer(size: int, mechanisms: Iterable[Mechanism]) -> int:
    """The command buffer for ``size`` bytes when ``mechanisms`` are offered."""
    return max([size] + [m.min_buffer for m in mechanisms])


@lru_cache(maxsize=256)
def server_buffer(protocol: str, size: int, methods: frozenset[str]) -> int:
    """:func:`command_buffer` of a server with these ``*_auth`` values."""
    return command_buffer(size, offered(protocol, methods))


def parse_auth(protocol: str, args: list[bytes]) -> tuple[Mechanism, bytes | None]:
    """The mechanism of ``AUTH``/``AUTHENTICATE`` arguments and the initial response.

    nginx's ngx_mail_auth_parse() (src/mail/ngx_mail_parse.c): the name in any case,
    at most one more argument and only where the mechanism takes one.  Raises
    :class:`SaslRejected` with an empty message (nothing to log) otherwise.
    """
    mechanism = _BY_NAME[protocol].get(args[0].upper()) if args else None
    if mechanism is None or len(args) > (2 if mechanism.initial_response else 1):
        raise SaslRejected("")
    return mechanism, (args[1] if len(args) == 2 else None)


def by_auth_method(auth_method: str) -> Method | None:
    """The entry behind an Auth-Method value (entries sharing one agree on the rest)."""
    return _BY_AUTH_METHOD.get(auth_method)


def make_salt(server_name: bytes, *, rand: Callable[[], int] | None = None,
              now: Callable[[], float] | None = None) -> bytes:
    """nginx's salt: ``<RANDOM.UNIXTIME@server_name>`` CRLF (ngx_mail_salt() in
    src/mail/ngx_mail_handler.c)."""
    r = rand() if rand is not None else secrets.randbits(31)
    t = int(now() if now is not None else time.time())
    return b"<%d.%d@%s>\r\n" % (r, t, server_name)
