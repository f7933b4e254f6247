"""POP3 (RFC 1939, with CAPA, UIDL, TOP and SASL PLAIN of RFC 2449 / 5034), sans-I/O.

The maildrop is the user's INBOX as it was at login.  DELE only marks; QUIT in
the TRANSACTION state removes the marked messages (the UPDATE state), a dropped
connection removes nothing.  RETR and TOP send the stored bytes dot-stuffed, so
the client gets back exactly what was stored.
"""

from __future__ import annotations

import re
from typing import ClassVar

from mailgate.demo._session import (
    BUSY,
    INTERNAL_ERROR,
    SHUTDOWN,
    TIMEOUT,
    TOO_MANY_ERRORS,
    Session,
    b64decode,
    sasl_plain,
)
from mailgate.demo.store import INBOX, Message

_CAPABILITIES = (b"USER", b"UIDL", b"TOP", b"RESP-CODES", b"PIPELINING",
                 b"SASL PLAIN", b"IMPLEMENTATION mailgate-demo")

_LINE_START_DOT = re.compile(rb"(?m)^\.")


def dot_stuffed(data: bytes) -> bytes:
    """A multi-line response body: leading dots doubled, ended by ``.`` CRLF."""
    out = _LINE_START_DOT.sub(b"..", data)
    if out and not out.endswith(b"\n"):
        out += b"\r\n"
    return out + b".\r\n"


class Pop3Session(Session):
    """One POP3 client connection (see :class:`~mailgate.demo._session.Session`)."""

    protocol = "pop3"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._login: bytes | None = None       # after USER
        self._sasl = False                      # the next line is an AUTH PLAIN response
        self._maildrop: list[Message] = []
        self._deleted: set[int] = set()         # indexes into _maildrop

    # -- replies ------------------------------------------------------------------

    def _ok(self, text: bytes = b"") -> None:
        self._send(b"+OK" + (b" " + text if text else b"") + b"\r\n")

    def _err(self, text: bytes) -> None:
        self._send(b"-ERR " + text + b"\r\n")
        self._error()

    def _greet(self) -> None:
        self._ok(self.hostname + b" POP3 server ready (mailgate demo)")

    _GOODBYES: ClassVar[dict[str, bytes]] = {
        TIMEOUT: b"-ERR Disconnected for inactivity.\r\n",
        BUSY: b"-ERR [SYS/TEMP] Too many connections, try again later.\r\n",
        TOO_MANY_ERRORS: b"-ERR Too many errors, closing.\r\n",
        SHUTDOWN: b"-ERR Server shutting down.\r\n",
        INTERNAL_ERROR: b"-ERR Internal server error.\r\n",
    }

    def _goodbye(self, reason: str) -> None:
        self._send(self._GOODBYES[reason])

    # -- input --------------------------------------------------------------------

    def _process(self) -> None:
        while self._may_continue():
            line = self._command_line()
            if line is None:
                return
            if self._sasl:
                self._sasl = False
                self._auth_response(line)
            else:
                self._command(line)

    def _line_too_long(self) -> None:
        self._sasl = False
        self._err(b"Line too long.")

    def _command(self, line: bytes) -> None:
        name, handler, rest = self._handler_for(line)
        if handler is None:
            self._err(b"Unknown command.")
        elif name not in self._ANY_STATE and (name in self._TRANSACTION) != (self.user is not None):
            self._err(b"Command not valid now.")
        else:
            handler(rest)

    _ANY_STATE = ("CAPA", "QUIT")
    _TRANSACTION = ("STAT", "LIST", "RETR", "DELE", "RSET", "TOP", "UIDL", "NOOP")

    # -- AUTHORIZATION -------------------------------------------------------

    def _cmd_CAPA(self, rest: bytes) -> None:
        self._ok(b"Capability list follows")
        self._send(b"".join(c + b"\r\n" for c in _CAPABILITIES), b".\r\n")

    def _cmd_USER(self, rest: bytes) -> None:
        if not rest:
            self._err(b"USER needs a name.")
            return
        self._login = rest
        self._ok()

    def _cmd_PASS(self, rest: bytes) -> None:
        login, self._login = self._login, None
        if login is None:
            self._err(b"USER first.")
            return
        self._log_in(login, rest)

    def _cmd_AUTH(self, rest: bytes) -> None:
        args = rest.split()
        if not args or args[0].upper() != b"PLAIN" or len(args) > 2:
            self._err(b"Unsupported authentication mechanism.")
        elif len(args) == 2:
            self._auth_response(args[1])
        else:
            self._sasl = True
            self._send(b"+ \r\n")

    def _auth_response(self, response: bytes) -> None:
        if response == b"*":
            self._err(b"Authentication cancelled.")
            return
        creds = sasl_plain(response)
        if creds is None:
            self._err(b"Invalid SASL PLAIN response." if b64decode(response) is None
                      else b"Malformed SASL PLAIN response.")
            return
        self._log_in(creds.login, creds.password)

    def _log_in(self, login: bytes, password: bytes) -> None:
        if not self.store.check_password(login, password):
            self._err(b"[AUTH] Authentication failed.")
            return
        self.user = login.decode("utf-8")
        self._maildrop = self.store.mailbox(self.user, INBOX).snapshot()
        self._ok(b"Logged in.")

    def _cmd_QUIT(self, rest: bytes) -> None:
        self.closed = True
        if self.user is None:
            self._ok(b"Bye.")
            return
        gone = [self._maildrop[i].uid for i in self._deleted]
        if gone:
            self.store.mailbox(self.user, INBOX).remove(gone)
        self._ok(b"Bye, %d message(s) deleted." % len(gone))

    def _cmd_NOOP(self, rest: bytes) -> None:
        self._ok()

    # -- TRANSACTION ---------------------------------------------------------

    def _message(self, arg: bytes) -> int | None:
        """The maildrop index of message number ``arg``, or None (an error sent)."""
        if not arg.isdigit() or len(arg) > 10:
            self._err(b"Invalid message number.")
            return None
        n = int(arg)
        if not 1 <= n <= len(self._maildrop):
            self._err(b"No such message.")
            return None
        if n - 1 in self._deleted:
            self._err(b"Message %d is deleted." % n)
            return None
        return n - 1

    def _args(self, rest: bytes, least: int, most: int) -> list[bytes] | None:
        args = rest.split()
        if not least <= len(args) <= most:
            self._err(b"Wrong number of arguments.")
            return None
        return args

    def _live(self):
        return ((i, m) for i, m in enumerate(self._maildrop) if i not in self._deleted)

    def _cmd_STAT(self, rest: bytes) -> None:
        live = [m for _, m in self._live()]
        self._ok(b"%d %d" % (len(live), sum(len(m.data) for m in live)))

    def _listing(self, rest: bytes, value) -> None:
        args = self._args(rest, 0, 1)
        if args is None:
            return
        if args:
            i = self._message(args[0])
            if i is not None:
                self._ok(b"%d %s" % (i + 1, value(self._maildrop[i])))
            return
        self._ok()
        self._send(b"".join(b"%d %s\r\n" % (i + 1, value(m)) for i, m in self._live()),
                   b".\r\n")

    def _cmd_LIST(self, rest: bytes) -> None:
        self._listing(rest, lambda m: b"%d" % len(m.data))

    def _cmd_UIDL(self, rest: bytes) -> None:
        validity = self.store.mailbox(self.user, INBOX).uidvalidity
        self._listing(rest, lambda m: b"%d.%d" % (validity, m.uid))

    def _cmd_RETR(self, rest: bytes) -> None:
        args = self._args(rest, 1, 1)
        i = None if args is None else self._message(args[0])
        if i is not None:
            data = self._maildrop[i].data
            self._ok(b"%d octets" % len(data))
            self._send(dot_stuffed(data))

    def _cmd_TOP(self, rest: bytes) -> None:
        args = self._args(rest, 2, 2)
        i = None if args is None else self._message(args[0])
        if i is None:
            return
        if not args[1].isdigit():
            self._err(b"Invalid line count.")
            return
        message = self._maildrop[i]
        body = message.structure.body
        end = body
        for _ in range(min(int(args[1]), len(message.data))):
            lf = message.data.find(b"\n", end)
            if lf < 0:
                end = len(message.data)
                break
            end = lf + 1
        self._ok()
        self._send(dot_stuffed(message.data[:end]))

    def _cmd_DELE(self, rest: bytes) -> None:
        args = self._args(rest, 1, 1)
        i = None if args is None else self._message(args[0])
        if i is not None:
            self._deleted.add(i)
            self._ok(b"Message %d deleted." % (i + 1))

    def _cmd_RSET(self, rest: bytes) -> None:
        self._deleted.clear()
        self._ok(b"%d messages." % len(self._maildrop))
