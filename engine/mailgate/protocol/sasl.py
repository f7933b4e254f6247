"""SASL as nginx's mail proxy speaks it: PLAIN, LOGIN, CRAM-MD5, EXTERNAL (SPEC §7).

The functions here decode one client response each and either return the
credentials or raise :class:`SaslRejected` carrying nginx's info-level log text.
The stored login and password are only changed on success (nginx 1.29.1+).
Mechanism names, prompts and the session salt are also here; the three protocol
machines only add their own prompt prefix (``+ `` or ``334 ``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

# what parse_auth_command() found
AUTH_LOGIN = "login"                    # AUTH LOGIN: ask for the user name
AUTH_LOGIN_USERNAME = "login-username"  # AUTH LOGIN <b64 user>: ask for the password
AUTH_PLAIN = "plain"                    # AUTH PLAIN: ask for the response
AUTH_PLAIN_DONE = "plain-done"          # AUTH PLAIN <b64>: credentials complete
AUTH_CRAM_MD5 = "cram-md5"              # AUTH CRAM-MD5: send the challenge
AUTH_EXTERNAL = "external"              # AUTH EXTERNAL: ask for the user name
AUTH_EXTERNAL_DONE = "external-done"    # AUTH EXTERNAL <b64>: credentials complete

# the base64 of "Username:" and "Password:", the LOGIN prompts
USERNAME_PROMPT = b"VXNlcm5hbWU6"
PASSWORD_PROMPT = b"UGFzc3dvcmQ6"

# capability names of the *_auth keywords, in nginx's fixed order
MECHANISMS = (("plain", b"PLAIN"), ("login", b"LOGIN"),
              ("cram-md5", b"CRAM-MD5"), ("external", b"EXTERNAL"))


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


def _decode(data: bytes, decode: Callable[[bytes], bytes | None], mechanism: str) -> bytes:
    plain = decode(data)
    if plain is None:
        raise SaslRejected(
            f"client sent invalid base64 encoding in AUTH {mechanism} command")
    return plain


def parse_auth_command(args: list[bytes]) -> str:
    """Classify ``AUTH``/``AUTHENTICATE`` arguments as nginx's ngx_mail_auth_parse.

    Returns one of the ``AUTH_*`` kinds; for the two forms with an initial
    response (``*_DONE``) the caller decodes ``args[1]``.  Raises
    :class:`SaslRejected` (with an empty message: nothing to log) on a syntax error.
    """
    if not args:
        raise SaslRejected("")
    mech = args[0].upper()
    n = len(args)
    if mech == b"LOGIN":
        if n == 1:
            return AUTH_LOGIN
        if n == 2:
            return AUTH_LOGIN_USERNAME
    elif mech == b"PLAIN":
        if n == 1:
            return AUTH_PLAIN
        if n == 2:
            return AUTH_PLAIN_DONE
    elif mech == b"CRAM-MD5":
        if n == 1:
            return AUTH_CRAM_MD5
    elif mech == b"EXTERNAL":
        if n == 1:
            return AUTH_EXTERNAL
        if n == 2:
            return AUTH_EXTERNAL_DONE
    raise SaslRejected("")


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


def make_salt(server_name: bytes, *, rand: Callable[[], int] | None = None,
              now: Callable[[], float] | None = None) -> bytes:
    """nginx's salt: ``<RANDOM.UNIXTIME@server_name>`` CRLF (SPEC §7)."""
    r = rand() if rand is not None else secrets.randbits(31)
    t = int(now() if now is not None else time.time())
    return b"<%d.%d@%s>\r\n" % (r, t, server_name)


def cram_md5_challenge(prefix: bytes, salt: bytes, encode) -> bytes:
    """The CRAM-MD5 prompt: prefix, base64 of the salt without its CRLF, CRLF."""
    return prefix + encode(salt[:-2]) + b"\r\n"


def enabled_mechanisms(methods) -> list[bytes]:
    """Capability names of the enabled ``*_auth`` keywords, in nginx's order."""
    return [name for keyword, name in MECHANISMS if keyword in methods]
