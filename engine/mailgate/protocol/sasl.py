"""Authentication methods as nginx's mail proxy knows them: the one table.

:data:`METHODS` holds every value of the ``imap_auth``, ``pop3_auth`` and ``smtp_auth``
directives, in nginx's bit order (``NGX_MAIL_AUTH_*_ENABLED`` in src/mail/ngx_mail.h):
the SASL mechanisms PLAIN, LOGIN, CRAM-MD5 and EXTERNAL (:class:`Mechanism`) and the
two methods that are not SASL (:class:`Method`): POP3's ``APOP`` command and SMTP's
``none``, mail relayed without authentication; then mailgate's own OAuth 2.0
mechanisms XOAUTH2 and OAUTHBEARER (RFC 7628), which nginx lacks.  An entry says which protocols offer
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

import json
import re
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple, Protocol

__all__ = [
    "APOP", "AUTH_SALT", "CRAM_MD5", "EXTERNAL", "LOGIN", "MECHANISMS", "METHODS", "NONE",
    "OAUTHBEARER", "OAUTH_BUFFER", "OAUTH_ERROR_FIELDS", "PASSWORD_PROMPT", "PLAIN", "PROTOCOL_LOGIN", "RELAY",
    "SASL_HOST", "SASL_PORT", "SASL_REPLAY", "SMTP_ENVELOPE", "USERNAME_PROMPT", "XOAUTH2",
    "Challenge", "Credentials", "Exchange", "Mechanism", "Method", "SaslRejected", "Session",
    "by_auth_method", "by_name", "decode_cram_md5", "decode_external",
    "decode_login_password", "decode_login_username", "decode_oauthbearer", "decode_plain",
    "decode_xoauth2", "directive_summary", "encode_oauthbearer", "encode_xoauth2",
    "keywords", "make_salt", "oauth_error", "offered", "parse_auth",
]

# the base64 of "Username:" and "Password:", the LOGIN prompts
USERNAME_PROMPT = b"VXNlcm5hbWU6"
PASSWORD_PROMPT = b"UGFzc3dvcmQ6"

PROTOCOLS = ("imap", "pop3", "smtp")

# extra auth_http request headers a method sends (ngx_mail_auth_http_create_request())
AUTH_SALT = "Auth-Salt"                         # the session salt, for digests
SMTP_ENVELOPE = ("Auth-SMTP-Helo", "Auth-SMTP-From", "Auth-SMTP-To")
# what an OAUTHBEARER request names of the server the client wanted (RFC 7628 section
# 3.1), sent only when the client gave it
SASL_HOST = "Auth-SASL-Host"
SASL_PORT = "Auth-SASL-Port"

# how the backend login replays a method (src/mail/ngx_mail_proxy_module.c)
PROTOCOL_LOGIN = "login"    # the protocol's own login with the user name and password:
#                             IMAP LOGIN with literals, POP3 USER and PASS, SMTP
#                             XCLIENT LOGIN= or, with proxy_smtp_auth, AUTH PLAIN
RELAY = "relay"             # SMTP: the client's MAIL FROM and RCPT TO, as they came
SASL_REPLAY = "sasl"        # the client's mechanism, its response made anew from the
#                             login and password in force (Mechanism.replay_response);
#                             SMTP with xclient and without proxy_smtp_auth: XCLIENT LOGIN=

# the command buffer of an OAuth 2.0 exchange: a JWT of several KB, base64 once more
# in the SASL response, with the command before it (RFC 7628 section 3.1 sets no limit)
OAUTH_BUFFER = 32 * 1024


class SaslRejected(Exception):
    """A client response was not acceptable; ``str()`` is nginx's log text."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a finished SASL exchange yields (``method`` as sent to auth_http).

    ``host`` and ``port``: the server an OAUTHBEARER client named (or None).
    """

    method: str
    login: bytes
    password: bytes
    host: bytes | None = None
    port: bytes | None = None

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

    def failed(self, session: Session, message: bytes,
               error: Mapping[str, str] | None = None) -> Challenge | None:
        """auth_http refused the credentials (``message``; ``error`` the OAuth error
        fields of its answer, if any): None to send the protocol's failure reply at
        once, as nginx does, or a challenge to send first; the client's answer to it is
        then read and the reply follows (RFC 7628 section 3.2.2)."""
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


# -- OAuth 2.0 (RFC 7628, and Google's XOAUTH2 that came before it) -------------------

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
# *"="; anything else in a token could not have come from an authorization server
_B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*\Z")
_KEY = re.compile(rb"[A-Za-z]+\Z")
_PORT = re.compile(rb"[0-9]{1,5}\Z")
_KVSEP = b"\x01"


def _kvpairs(data: bytes, mechanism: str) -> dict[bytes, bytes]:
    """``*kvpair kvsep``, each kvpair ``key=value`` kvsep (RFC 7628 section 3.1,
    kvsep ^A): the pairs, keys lowercased, the first of a key counting."""
    body = data[:-1]
    if not data.endswith(_KVSEP) or (body and not body.endswith(_KVSEP)):
        raise SaslRejected(f"client sent invalid request in AUTH {mechanism} command")
    pairs = {}
    for item in body[:-1].split(_KVSEP) if body else ():
        key, eq, value = item.partition(b"=")
        if not eq or not _KEY.match(key):
            raise SaslRejected(f"client sent invalid request in AUTH {mechanism} command")
        pairs.setdefault(key.lower(), value)
    return pairs


def _bearer(pairs: Mapping[bytes, bytes], mechanism: str) -> bytes:
    """The token of ``auth=Bearer TOKEN`` (the scheme in any case, RFC 6750 section 2.1)."""
    auth = pairs.get(b"auth")
    if auth is None or auth[:7].lower() != b"bearer " or not _B64TOKEN.match(auth[7:]):
        raise SaslRejected(f"client sent invalid token in AUTH {mechanism} command")
    return auth[7:]


def decode_xoauth2(response: bytes, decode) -> Credentials:
    """``user=`` login ^A ``auth=Bearer`` token ^A ^A (Google's XOAUTH2)."""
    pairs = _kvpairs(_decode(response, decode, "XOAUTH2"), "XOAUTH2")
    login = pairs.get(b"user")
    if login is None:
        raise SaslRejected("client sent invalid login in AUTH XOAUTH2 command")
    return Credentials("xoauth2", login, _bearer(pairs, "XOAUTH2"))


def _saslname(value: bytes) -> bytes | None:
    """RFC 5801's saslname: ``=2C`` is a comma, ``=3D`` an equals sign, no other ``=``
    and no bare comma."""
    if b"," in value:
        return None
    parts = value.split(b"=")
    out = [parts[0]]
    for part in parts[1:]:
        escape = {b"2C": b",", b"3D": b"="}.get(part[:2])
        if escape is None:
            return None
        out.append(escape + part[2:])
    return b"".join(out)


def decode_oauthbearer(response: bytes, decode) -> Credentials:
    """RFC 7628 section 3.1: the GS2 header (``n,a=login,``; no channel binding), then
    ``host=``, ``port=`` and ``auth=Bearer`` token as ^A-separated pairs."""
    plain = _decode(response, decode, "OAUTHBEARER")
    header, sep, rest = plain.partition(_KVSEP)
    parts = header.split(b",")
    # gs2-cbind-flag "n" or "y" ("p=": channel binding, which OAUTHBEARER does not do)
    if not sep or len(parts) != 3 or parts[0] not in (b"n", b"y") or parts[2]:
        raise SaslRejected("client sent invalid request in AUTH OAUTHBEARER command")
    login = b""
    if parts[1]:
        login = _saslname(parts[1][2:]) if parts[1][:2] == b"a=" else None
        if login is None:
            raise SaslRejected("client sent invalid login in AUTH OAUTHBEARER command")
    pairs = _kvpairs(rest, "OAUTHBEARER")
    token = _bearer(pairs, "OAUTHBEARER")
    port = pairs.get(b"port")
    if port is not None and not _PORT.match(port):
        raise SaslRejected("client sent invalid port in AUTH OAUTHBEARER command")
    return Credentials("oauthbearer", login, token, pairs.get(b"host"), port)


def encode_xoauth2(login: bytes, token: bytes) -> bytes:
    """The XOAUTH2 response (not yet base64) for the backend."""
    return b"user=%s\x01auth=Bearer %s\x01\x01" % (login, token)


def encode_oauthbearer(login: bytes, token: bytes) -> bytes:
    """The OAUTHBEARER response (not yet base64) for the backend; host and port are the
    proxy's business, not the backend's, so they are left out."""
    name = login.replace(b"=", b"=3D").replace(b",", b"=2C")
    return b"n,a=%s,\x01auth=Bearer %s\x01\x01" % (name, token)


# the RFC 7628 section 3.2.2 error fields, from the auth answer's Auth-Error-* headers
OAUTH_ERROR_FIELDS = ("status", "schemes", "scope")


def oauth_error(defaults: Mapping[str, str], error: Mapping[str, str] | None) -> bytes:
    """The JSON error document of a refused OAuth login: ``error``'s fields over
    ``defaults``, in RFC 7628's order."""
    fields = dict(defaults)
    for name in OAUTH_ERROR_FIELDS:
        if error and error.get(name):
            fields[name] = error[name]
    ordered = {name: fields[name] for name in OAUTH_ERROR_FIELDS if name in fields}
    return json.dumps(ordered, separators=(",", ":")).encode()


# what the client's line answers after an OAuth error challenge
FAILURE = "failure"


class OAuthExchange(OneResponse):
    """An OAuth 2.0 exchange: one response, with the command or after an empty
    challenge; a refusal is the base64 JSON error challenge first (RFC 7628 section
    3.2.2), whose answer (``AQ==`` or an empty line) brings the failure reply."""

    def __init__(self, decode: Callable[[bytes, Callable], Credentials],
                 error_defaults: Mapping[str, str]) -> None:
        super().__init__(decode)
        self._error_defaults = error_defaults

    def failed(self, session: Session, message: bytes,
               error: Mapping[str, str] | None = None) -> Challenge:
        document = oauth_error(self._error_defaults, error)
        return Challenge(session.encode_base64(document), FAILURE)


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
    always).  ``min_buffer``: its command and responses are read into a buffer of at
    least this many bytes (the configured size stays the limit of other commands).
    ``replay_response`` makes the response (not yet base64) that logs in to the
    backend from the login and password in force (``replay`` :data:`SASL_REPLAY`), and
    ``error_answer`` is what a client says to its failure challenge.
    """

    name: bytes
    exchange: Exchange
    initial_response: bool = True
    refused_when_disabled: bool = True
    min_buffer: int = 0
    replay_response: Callable[[bytes, bytes], bytes] | None = None
    error_answer: bytes = b""


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

# mailgate's own from here on (nginx lacks them): OAuth 2.0 bearer tokens.  The token
# is the password: it goes to auth_http as Auth-Pass and logs in to the backend unless
# the auth server sends another (a token minted for the backend)

# Google's XOAUTH2 (developers.google.com/gmail/imap/xoauth2-protocol): the error
# challenge is answered by an empty line
XOAUTH2 = Mechanism(
    name=b"XOAUTH2", keyword="xoauth2", protocols=PROTOCOLS,
    exchange=OAuthExchange(decode_xoauth2, {"status": "400", "schemes": "Bearer"}),
    auth_method="xoauth2", backend_password=True, replay=SASL_REPLAY,
    min_buffer=OAUTH_BUFFER, replay_response=encode_xoauth2,
    notes=dict.fromkeys(PROTOCOLS, "mailgate's own"))

# RFC 7628: the error challenge is answered by a lone ^A ("AQ==", section 3.2.3)
OAUTHBEARER = Mechanism(
    name=b"OAUTHBEARER", keyword="oauthbearer", protocols=PROTOCOLS,
    exchange=OAuthExchange(decode_oauthbearer, {"status": "invalid_token",
                                                "schemes": "bearer"}),
    auth_method="oauthbearer", auth_fields=(SASL_HOST, SASL_PORT), backend_password=True,
    replay=SASL_REPLAY, min_buffer=OAUTH_BUFFER, replay_response=encode_oauthbearer,
    error_answer=b"AQ==", notes=dict.fromkeys(PROTOCOLS, "mailgate's own"))

METHODS: tuple[Method, ...] = (PLAIN, LOGIN, APOP, CRAM_MD5, EXTERNAL, NONE, XOAUTH2,
                               OAUTHBEARER)
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


def by_name(protocol: str, name: bytes) -> Mechanism | None:
    """The mechanism ``name`` (any case) of ``protocol``, or None."""
    return _BY_NAME[protocol].get(name.upper())


def parse_auth(protocol: str, args: list[bytes]) -> tuple[Mechanism, bytes | None]:
    """The mechanism of ``AUTH``/``AUTHENTICATE`` arguments and the initial response.

    nginx's ngx_mail_auth_parse() (src/mail/ngx_mail_parse.c): the name in any case,
    at most one more argument and only where the mechanism takes one.  Raises
    :class:`SaslRejected` with an empty message (nothing to log) otherwise.
    """
    mechanism = by_name(protocol, args[0]) if args else None
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
