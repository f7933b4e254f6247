"""Target ``machines``: the client-facing IMAP, POP3 and SMTP machines, then their backend login.

Input: byte 0 selects the server configuration (:func:`_config`); byte 1 the protocol
(bits 0-1: IMAP, POP3, SMTP, SMTP), how the session starts (bit 2 greets from the
class's ``fixed_start()`` and makes the machine ``greeted``, where the protocol has a
fixed greeting; bit 3 gives it implicit TLS; bit 4 rejects the client certificate of
that TLS handshake instead of greeting, bit 5: the certificate is missing) and the
``*_auth`` methods (bits 6-7, :data:`METHODS`).  Then steps
(:mod:`tests.fuzz.common`) whose operation means, by the machine's phase:

* reading commands (``auth``, ``greeting-delay``, ``auth-sleep``): 0 the timer fires,
  1 the chunk goes in through ``get_buffer()``/``buffer_updated()``, 6 with an empty
  chunk the client closes, 7 the harness sends its secret credentials (below; chunk
  byte 0 picks them, byte 1 where the read is cut, the rest follows them; once,
  afterwards 7 is data), any other the chunk goes in through ``receive_data()``;
* ``starttls``: 7 the certificate is rejected after the handshake (a non-empty chunk:
  it is missing), another odd one the handshake succeeds, an even one the chunk
  arrives and is dropped;
* ``auth-request``: the auth service answers :func:`_result` of the step;
* ``proxy``: the backend login machine starts; then 0 its timer fires, 1 the chunk goes
  in through its ``get_buffer()``/``buffer_updated()``, 7 the backend connection is
  lost, any other the chunk goes in through ``receive_data()``.

Every input runs on each implementation of the wire primitives (compiled and pure
Python) and the two transcripts of actions must be equal.  Contract: actions only, no
exception; the command buffer, the arguments and the IMAP tag stay bounded; once the
machine has put the harness's secret in an ``AuthRequest`` as a password, no ``Log``
action of the session shows it, in clear or in the base64 the client sent.

The property tests in ``tests/protocol/test_fuzz.py`` drive :func:`drive` with
hypothesis; ``python -m tests.fuzz machines`` with atheris.
"""

from __future__ import annotations

import base64
from functools import cache

from mailgate.protocol import (
    AuthFailed,
    AuthInternalError,
    AuthOK,
    AuthRequest,
    AuthRetry,
    Close,
    ImapServer,
    Log,
    LoginDone,
    LoginFailed,
    Pop3Server,
    SmtpServer,
    _impl,
)
from mailgate.protocol._server import ServerMachine

from tests.fuzz.common import steps
from tests.protocol.factory import server_config

MACHINES = (ImapServer, Pop3Server, SmtpServer)
PROTOCOLS = ("imap", "pop3", "smtp")
_TERMINAL = (Close, LoginDone, LoginFailed)

SECRET = b"Zq7Secret"
_DIGEST = SECRET.ljust(32, b"0")  # CRAM-MD5 and APOP digests are 32 bytes
_PLAIN = base64.b64encode(b"\0user\0" + SECRET)
_LOGIN = base64.b64encode(b"user") + b"\r\n" + base64.b64encode(SECRET) + b"\r\n"
_CRAM = base64.b64encode(b"user " + _DIGEST)
#: what must not reach a log once the secret was used as a password
SECRET_FORMS = tuple(s.decode() for s in (SECRET, _PLAIN, base64.b64encode(SECRET), _CRAM))

_SASL = (b"AUTH PLAIN " + _PLAIN + b"\r\n", b"AUTH PLAIN\r\n" + _PLAIN + b"\r\n",
         b"AUTH LOGIN\r\n" + _LOGIN, b"AUTH LOGIN " + _LOGIN,
         b"AUTH CRAM-MD5\r\n" + _CRAM + b"\r\n")
#: per protocol, complete commands (with their SASL responses) carrying SECRET
SECRET_UNITS = (
    (b"s1 LOGIN user " + SECRET + b"\r\n",
     b's1 LOGIN "user" "' + SECRET + b'"\r\n',
     b"s1 LOGIN {4}\r\nuser {%d}\r\n%s\r\n" % (len(SECRET), SECRET),
     b"s1 LOGIN {4+}\r\nuser {%d+}\r\n%s\r\n" % (len(SECRET), SECRET),
     *(b"s1 AUTHENTICATE" + unit[4:] for unit in _SASL)),
    (b"USER user\r\nPASS " + SECRET + b"\r\n", b"APOP user " + _DIGEST + b"\r\n", *_SASL),
    _SASL,
)

#: none: the bug this target found is fixed (84d9c4c: an IMAP LOGIN whose password came
#: in a literal showed it in a later "too long command" log line), and
#: regressions/machines/imap-literal-password-logged replays it
KNOWN_BUGS = ()

#: tokens for the fuzzer's dictionary (also the property tests' alphabet)
DICTIONARY = (
    b"a1 ", b"LOGIN ", b"AUTHENTICATE ", b"PLAIN", b"LOGIN", b"CRAM-MD5 ", b"EXTERNAL",
    b"STARTTLS\r\n", b"STLS\r\n", b"USER u\r\n", b"PASS p\r\n", b"APOP u d\r\n", b"AUTH ",
    b"EHLO x\r\n", b"HELO x\r\n", b"MAIL FROM:<a>\r\n", b"RCPT TO:<b>\r\n", b"CAPABILITY\r\n",
    b"CAPA\r\n", b"LOGOUT\r\n", b"QUIT\r\n", b"NOOP\r\n", b"RSET\r\n", b"{3}\r\n",
    b"{2+}\r\n", b"\"", b"\\", b"\r\n", b"\n", b"\r", b"=", b"*", b"AGdvb2QAcHc=\r\n",
    b"+OK\r\n", b"* OK\r\n", b"+ \r\n", b"a1 OK\r\n", b"220 x\r\n", b"250 x\r\n",
    b"250-x\r\n", b"235 x\r\n", b"x" * 40, b"XOAUTH2 ", b"OAUTHBEARER ",
    b"dXNlcj11AWF1dGg9QmVhcmVyIHQBAQ==\r\n", b"biwsAWF1dGg9QmVhcmVyIHQBAQ==\r\n", b"AQ==\r\n",
    b"a1 ID NIL\r\n", b'a1 ID ("name" "x")\r\n', b" ID (",
)


#: the ``*_auth`` lists a session may have: every method, nginx's defaults, every
#: method but SMTP's "none" (MAIL is then refused and logged), the salted ones only
METHODS = (
    {"imap_auth": ("plain", "login", "cram-md5", "external", "xoauth2", "oauthbearer"),
     "pop3_auth": ("plain", "apop", "cram-md5", "external", "xoauth2", "oauthbearer"),
     "smtp_auth": ("plain", "login", "cram-md5", "external", "none", "xoauth2",
                   "oauthbearer")},
    {},
    {"imap_auth": ("plain", "login", "cram-md5", "external"),
     "pop3_auth": ("plain", "apop", "cram-md5", "external"),
     "smtp_auth": ("plain", "login", "cram-md5", "external")},
    {"imap_auth": ("cram-md5",), "pop3_auth": ("apop", "cram-md5"),
     "smtp_auth": ("cram-md5",)},
)


@cache
def _config(selector: int, protocol: str, methods: int):
    """A server configuration (each built once): selector bits 0-1 the client buffer,
    2-3 ``starttls``, 4 ``proxy_buffer``, 5 ``smtp_greeting_delay``, 6
    ``proxy_pass_error_message``, 7 ``max_errors`` 1 (else 3); ``METHODS[methods]``."""
    size = (24, 64, 4096, 4096)[selector & 3]
    return server_config(
        protocol, imap_client_buffer=size, smtp_client_buffer=size,
        starttls=("off", "on", "only", "on")[selector >> 2 & 3], **METHODS[methods],
        proxy_buffer=(16, 4096)[selector >> 4 & 1],
        smtp_greeting_delay=1 if selector & 0x20 else 0,
        proxy_pass_error_message=bool(selector & 0x40),
        max_errors=1 if selector & 0x80 else 3)


def _result(op: int, chunk: bytes):
    """The auth service's answer for a step: every kind, with the chunk as its text."""
    text = chunk.translate(None, b"\r\n") or b"denied"  # a header value has no CR, LF
    return (AuthOK("127.0.0.1", 143, password=b"pw"),
            AuthOK("127.0.0.1", 143, user=text),
            AuthOK("127.0.0.1", 143, user=text, password=text, upstream="backend:143"),
            AuthFailed(text, wait=1),
            AuthFailed(text, error_code=b"535 5.7.8"),
            AuthRetry(0),
            AuthRetry(2),
            AuthInternalError())[op]


def check_bounded(m: ServerMachine) -> None:
    """The machine's memory does not grow with its input."""
    buffer = m.buffer
    assert 0 <= buffer.pos <= buffer.last <= buffer.capacity
    assert len(m.reader.args) <= 11
    assert len(getattr(m.reader, "tag", b"")) <= 33


def _write_into(view: memoryview, chunk: bytes) -> int:
    """What an asyncio BufferedProtocol transport does with a read: fill the view."""
    n = min(len(view), len(chunk))
    if n:  # an empty view (the machine is not reading) may be read-only
        view[:n] = chunk[:n]
    return n


def _entry(action):
    # a LoginDone holds the relay buffer object: compare what the client will read
    return ("LoginDone", action.to_client) if isinstance(action, LoginDone) else action


def run(data: bytes, implementation: str) -> list:
    """The transcript of one session: every action, in order (see the module docstring)."""
    if len(data) < 2:
        return []
    selector, mode = data[0], data[1]
    protocol = min(mode & 3, 2)
    cls = MACHINES[protocol]
    config = _config(selector, PROTOCOLS[protocol], mode >> 6)
    fixed = cls.fixed_start(config) if mode & 4 else None
    m = cls(config, tls=bool(mode & 8), greeted=fixed is not None,
            implementation=implementation, rand=lambda: 1, now=lambda: 2)
    if mode & 16:
        actions = m.certificate_rejected(bool(mode & 32))
    else:
        actions = list(fixed) if fixed is not None else m.start()
    transcript = [_entry(a) for a in actions]
    units = SECRET_UNITS[protocol]
    secret_sent = False
    backend = None
    for op, chunk in steps(data, 2):
        if any(isinstance(a, _TERMINAL) for a in actions):
            break
        if backend is not None:
            if op == 0:
                actions = backend.timer_expired()
            elif op == 1:
                actions = backend.buffer_updated(_write_into(backend.get_buffer(), chunk))
            elif op == 7:
                actions = backend.connection_lost()
            else:
                actions = backend.receive_data(chunk)
            assert 0 <= backend.buffer.pos <= backend.buffer.last <= config.proxy_buffer
        elif m.phase == "starttls":
            if op == 7:
                actions = m.certificate_rejected(bool(chunk))
            elif op & 1:
                actions = m.tls_established()
            else:
                actions = m.receive_data(chunk)
        elif m.phase == "auth-request":
            actions = m.auth_result(_result(op, chunk))
        elif m.phase == "proxy":
            backend = m.backend_login()
            actions = backend.start()
        elif op == 0:
            actions = m.timer_expired()
        elif op == 1:
            actions = m.buffer_updated(_write_into(m.get_buffer(), chunk))
        elif op == 6 and not chunk:
            actions = m.eof_received()
        elif op == 7 and not secret_sent and chunk:
            secret_sent = True
            unit = units[chunk[0] % len(units)]
            transcript.append(("secret", unit))
            # the rest of the chunk is pipelined behind the credentials, in one read
            payload = unit + chunk[2:]
            cut = chunk[1] % len(payload) if len(chunk) > 1 else len(payload)
            actions = m.receive_data(payload[:cut]) + m.receive_data(payload[cut:])
        else:
            actions = m.receive_data(chunk)
        transcript += [_entry(a) for a in actions]
        check_bounded(m)
    return transcript


def check_secret(transcript: list) -> None:
    """No log line shows the harness's secret once the machine used it as a password."""
    if not any(isinstance(a, AuthRequest) and SECRET in a.password for a in transcript):
        return
    # a password sent in an IMAP literal gets its own words (the bug of
    # regressions/machines/imap-literal-password-logged)
    literal = any(a[0] == "secret" and b"LOGIN {" in a[1] for a in transcript
                  if isinstance(a, tuple))
    for action in transcript:
        if isinstance(action, Log):
            leaked = [form for form in SECRET_FORMS if form in action.message]
            where = "sent in an IMAP literal " if literal else ""
            assert not leaked, f"secret {where}in a log line: {action!r}"


def drive(data: bytes) -> None:
    """Run ``data`` on every implementation; the transcripts must agree."""
    transcripts = [run(data, name) for name in _impl.available()]
    for other in transcripts[1:]:
        assert other == transcripts[0], "the implementations disagree"
    if SECRET not in data:  # else the fuzzer itself typed it, maybe not as a password
        check_secret(transcripts[0])


one_input = drive
