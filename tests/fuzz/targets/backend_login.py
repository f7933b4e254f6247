"""Target ``backend_login``: the IMAP, POP3 and SMTP backend login machines fed any replies.

mailgate logs in to the backend itself (``ngx_mail_proxy_module.c``): it reads each
reply into the proxy buffer, checks its start and sends the next command.  The backend
is trusted less than it seems (a compromised or confused server, a wrong port): any
bytes may come back.  The ``machines`` target reaches these machines after a whole
client login; this one starts them directly, with every login variant.

Input: byte 0 selects the protocol (bits 0-1: IMAP, POP3, SMTP, SMTP), ``proxy_buffer`` (bit 2: 16
bytes, else 4096), ``proxy_pass_error_message`` (bit 3) and for SMTP ``xclient``
(bit 4), ``proxy_smtp_auth`` (bit 5), EHLO (bit 6) and the client's HELO (bit 7);
byte 1 the login variant (:func:`_machine`: for IMAP and POP3 its bits 3-4 also choose
the protocol's own login or the replay of XOAUTH2 or OAUTHBEARER); then steps (:mod:`tests.fuzz.common`):
0 the login timer fires, 1 the chunk arrives through ``get_buffer()``/
``buffer_updated()``, 7 the connection is lost, any other through ``receive_data()``.

Every input runs on each implementation (compiled and pure Python relay buffers and
base64) and the transcripts must be equal.  Contract: actions only, no exception; one ``LoginDone`` or ``LoginFailed`` at most,
nothing sent upstream after it; the proxy buffer keeps its bounds; no log line shows
the password sent to the backend (when it was given one) as a word of its own, in clear
or in base64 (also inside a replayed OAuth response), even when the backend echoes it (the dictionary gives the fuzzer the password to echo; a
password inside a longer word is left alone, as ``BackendLogin._scrub`` documents).
"""

from __future__ import annotations

import base64
import re
from functools import cache

from mailgate.inet import UNAVAILABLE
from mailgate.protocol import (
    ArmTimer,
    DisarmTimer,
    ImapBackendLogin,
    Log,
    LoginDone,
    LoginFailed,
    Pop3BackendLogin,
    SendUpstream,
    SmtpBackendLogin,
    _impl,
    sasl,
)

from tests.fuzz.common import steps
from tests.protocol.factory import server_config

PASSWORD = b"Zq7Secret"
LOGINS = (b"user", b"", b"us er", b"j\xc3\xb6rg", b"a\0b", b"+=%")
_FORMS = (PASSWORD, base64.b64encode(PASSWORD))
_ACTIONS = (ArmTimer, DisarmTimer, Log, LoginDone, LoginFailed, SendUpstream)

# the client's method when the backend login replays it (IMAP and POP3 variants)
REPLAYED = (None, sasl.XOAUTH2, sasl.OAUTHBEARER, None)

DICTIONARY = (
    b"* OK ", b"* ", b"+ ", b"+OK ", b"-ERR ", b"a1 OK ", b"a1 NO ", b"220 ", b"250 ",
    b"250-", b"235 ", b"334 ", b"535 ", b"\r\n", b"\0", PASSWORD, *_FORMS[1:],
    base64.b64encode(b"\0user\0" + PASSWORD),
    base64.b64encode(sasl.encode_xoauth2(b"user", PASSWORD)),
    base64.b64encode(sasl.encode_oauthbearer(b"user", PASSWORD)),
)


@cache
def _config(selector: int):
    protocol = ("imap", "pop3", "smtp", "smtp")[selector & 3]
    return server_config(protocol, proxy_buffer=16 if selector & 4 else 4096,
                         proxy_pass_error_message=bool(selector & 8),
                         xclient=bool(selector & 16), proxy_smtp_auth=bool(selector & 32))


def _machine(selector: int, variant: int, implementation: str) -> tuple:
    """(the login machine for the variant, the password it was given or None): login,
    password, SMTP's client facts."""
    config = _config(selector)
    login = LOGINS[variant % len(LOGINS)]
    kwargs = {"login": login, "password": PASSWORD, "implementation": implementation}
    method = REPLAYED[variant >> 3 & 3]
    if config.protocol == "imap":
        tag = (b"a1 ", b"A.b-C_9 ")[variant >> 7]
        return ImapBackendLogin(config, tag=tag, method=method, **kwargs), PASSWORD
    if config.protocol == "pop3":
        return Pop3BackendLogin(config, method=method, **kwargs), PASSWORD
    method = ("plain", "none", "login", "cram-md5", "external")[(variant >> 3) % 5]
    if method not in ("plain", "login") and variant & 64:
        kwargs["password"] = None  # no Auth-Pass: "no password available" with smtp_auth
    machine = SmtpBackendLogin(
        config, auth_method=method, esmtp=bool(selector & 64),
        helo=b"client.test" if selector & 128 else None,
        mail_from=b"MAIL FROM:<a@b.test>" if method == "none" else None,
        rcpt_to=b"RCPT TO:<c@d.test>" if method == "none" else None,
        client_addr=("127.0.0.1", "::1", "")[(variant >> 4) % 3],
        client_host=(UNAVAILABLE, "client.test")[variant >> 7], **kwargs)
    return machine, kwargs["password"]


def _entry(action):
    # a LoginDone holds the relay buffer object: compare what the client will read
    return ("LoginDone", action.to_client) if isinstance(action, LoginDone) else action


def run(data: bytes, implementation: str) -> list:
    """The transcript of a login to a backend that answers ``data`` (module docstring)."""
    backend, password = _machine(data[0], data[1], implementation)
    # without a password (SMTP, no Auth-Pass) nothing was sent that a log could show
    sent_password = password is not None
    login = LOGINS[data[1] % len(LOGINS)]
    forms = _FORMS + (base64.b64encode(b"\0" + login + b"\0" + PASSWORD),
                      base64.b64encode(sasl.encode_xoauth2(login, PASSWORD)),
                      base64.b64encode(sasl.encode_oauthbearer(login, PASSWORD)))
    # a word of its own: not next to a base64 character (printable() escapes others)
    alternatives = "|".join(re.escape(form.decode()) for form in forms)
    leak = re.compile(f"(?<![A-Za-z0-9+/=])({alternatives})(?![A-Za-z0-9+/=])")
    transcript = [_entry(a) for a in backend.start()]
    outcomes = 0
    for op, chunk in steps(data, 2):
        if op == 0:
            actions = backend.timer_expired()
        elif op == 1:
            view = backend.get_buffer()
            n = min(len(view), len(chunk))
            if n:  # an empty view (login over, bytes queued) may be read-only
                view[:n] = chunk[:n]
            actions = backend.buffer_updated(n)
        elif op == 7:
            actions = backend.connection_lost()
        else:
            actions = backend.receive_data(chunk)
        buffer = backend.buffer
        assert 0 <= buffer.pos <= buffer.last <= buffer.capacity == backend.config.proxy_buffer
        for action in actions:
            assert isinstance(action, _ACTIONS), action
            if isinstance(action, (LoginDone, LoginFailed)):
                outcomes += 1
                assert outcomes == 1, "a second outcome"
            elif isinstance(action, SendUpstream):
                assert not outcomes, "sent upstream after the outcome"
            elif isinstance(action, Log):
                assert not (sent_password and leak.search(action.message)), (
                    f"password in a log line: {action!r}")
        assert backend.finished == bool(outcomes)
        transcript += [_entry(a) for a in actions]
    transcript.append(backend.take_unread())
    return transcript


def one_input(data: bytes) -> None:
    """Run ``data`` on every implementation; the transcripts must agree."""
    if len(data) < 2:
        return
    transcripts = [run(data, name) for name in _impl.available()]
    for other in transcripts[1:]:
        assert other == transcripts[0], "the implementations disagree"
