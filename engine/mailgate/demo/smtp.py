"""SMTP (an RFC 5321 subset, with PIPELINING, SIZE, 8BITMIME, AUTH and XCLIENT), sans-I/O.

Mail for a recipient that is a store user is delivered to that user's INBOX; any
other recipient is refused with 550 (the demo relays nowhere).  The delivered
bytes are exactly the DATA the client sent, dot-unstuffed: line ends are kept as
they came (a bare LF stays a bare LF), and only CRLF ``.`` CRLF ends the data.
XCLIENT (ADDR, NAME, LOGIN, ...) is answered with a fresh 220 greeting, as Postfix
does, which is what nginx's ``xclient on`` expects from its backend.
"""

from __future__ import annotations

import itertools
import re

from mailgate.demo._session import (
    BUSY,
    INTERNAL_ERROR,
    SHUTDOWN,
    SKIPPED,
    TIMEOUT,
    TOO_LONG,
    TOO_MANY_ERRORS,
    Session,
    b64decode,
    sasl_plain,
)
from mailgate.protocol.sasl import PASSWORD_PROMPT, USERNAME_PROMPT

_XCLIENT_ATTRIBUTES = (b"NAME", b"ADDR", b"PORT", b"PROTO", b"HELO", b"LOGIN")
# "MAIL FROM:<path> params" / "RCPT TO:<path> params", spaces after the colon tolerated
_PATH = re.compile(rb"(?i)(FROM|TO):[ \t]*(<[^<>]*>|[^ \t<>]+)((?:[ \t]+[^ \t]+)*)[ \t]*\Z")
_ADDRESS = re.compile(rb"\A[^\x00-\x20<>@]+@[^\x00-\x20<>@]+\Z|\A\"[^\"\r\n]*\"@[^\x00-\x20<>@]+\Z")
_queue_ids = itertools.count(1)


def _xtext_decode(value: bytes) -> bytes | None:
    """RFC 3461 xtext (``+XX`` escapes); None if malformed."""
    out = bytearray()
    i = 0
    while i < len(value):
        if value[i] == 0x2B:
            try:
                out.append(int(value[i + 1:i + 3], 16))
            except ValueError:
                return None
            i += 3
        else:
            out.append(value[i])
            i += 1
    return bytes(out)


class SmtpSession(Session):
    """One SMTP client connection (see :class:`~mailgate.demo._session.Session`)."""

    protocol = "smtp"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helo: bytes | None = None
        self.xclient: dict[str, bytes] = {}
        self._auth_step: str | None = None     # "plain", "login-user", "login-pass"
        self._auth_login = b""
        self._reset_transaction()
        self._data: list[bytes] | None = None  # while reading DATA

    def _reset_transaction(self) -> None:
        self.sender: bytes | None = None
        self.recipients: list[str] = []        # store users
        self._rcpt_tried = False

    # -- replies ------------------------------------------------------------------

    def _reply(self, code: int, text: bytes) -> None:
        self._send(b"%d %s\r\n" % (code, text))

    def _fail(self, code: int, text: bytes) -> None:
        self._reply(code, text)
        self._error()

    def _greet(self) -> None:
        self._reply(220, self.hostname + b" ESMTP mailgate demo")

    def _goodbye(self, reason: str) -> None:
        text = {
            TIMEOUT: b"4.4.2 %s Error: timeout exceeded",
            BUSY: b"4.7.0 %s Error: too many connections",
            TOO_MANY_ERRORS: b"4.7.0 %s Error: too many errors",
            SHUTDOWN: b"4.3.2 %s Service shutting down",
            INTERNAL_ERROR: b"4.3.0 %s Error: internal error",
        }[reason]
        self._reply(421, text % self.hostname)

    # -- input --------------------------------------------------------------------

    def _process(self) -> None:
        while self._may_continue():
            if self._data is not None:
                if not self._data_line():
                    return
                continue
            line = self._command_line()
            if line is None:
                return
            if self._auth_step is not None:
                self._auth_response(line)
            else:
                self._command(line)

    def _line_too_long(self) -> None:
        self._auth_step = None
        self._fail(500, b"5.5.0 Error: line too long")

    def _command(self, line: bytes) -> None:
        _, handler, rest = self._handler_for(line)
        if handler is None:
            self._fail(500, b"5.5.2 Error: command not recognized")
        else:
            handler(rest.strip(b" \t"))

    # -- session commands ---------------------------------------------------

    def _cmd_EHLO(self, rest: bytes) -> None:
        if not self._hello(rest, b"EHLO"):
            return
        lines = [self.hostname, b"PIPELINING", b"SIZE %d" % self.limits.message_size,
                 b"8BITMIME", b"ENHANCEDSTATUSCODES", b"AUTH PLAIN LOGIN",
                 b"XCLIENT " + b" ".join(_XCLIENT_ATTRIBUTES)]
        self._send(*(b"250-%s\r\n" % line for line in lines[:-1]), b"250 %s\r\n" % lines[-1])

    def _cmd_HELO(self, rest: bytes) -> None:
        if self._hello(rest, b"HELO"):
            self._reply(250, self.hostname)

    def _hello(self, rest: bytes, verb: bytes) -> bool:
        if not rest or b" " in rest:
            self._fail(501, b"5.5.4 Syntax: " + verb + b" hostname")
            return False
        self.helo = rest
        self._reset_transaction()
        return True

    def _cmd_XCLIENT(self, rest: bytes) -> None:
        if self.sender is not None:
            self._fail(503, b"5.5.1 Error: MAIL transaction in progress")
            return
        attrs = {}
        for item in rest.split():
            name, eq, value = item.partition(b"=")
            decoded = _xtext_decode(value)
            if not eq or name.upper() not in _XCLIENT_ATTRIBUTES or decoded is None:
                self._fail(501, b"5.5.4 Bad XCLIENT attribute: " + name[:64])
                return
            attrs[name.upper().decode()] = decoded
        if not attrs:
            self._fail(501, b"5.5.4 Syntax: XCLIENT attribute=value ...")
            return
        self.xclient.update(attrs)
        login = attrs.get("LOGIN")
        if login is not None:
            # the proxy in front has authenticated the client as this login
            self.user = None if login in (b"[UNAVAILABLE]", b"[TEMPUNAVAIL]") else \
                login.decode("utf-8", "replace")
        self.helo = None
        self._reset_transaction()
        self._greet()

    def _cmd_AUTH(self, rest: bytes) -> None:
        if self.helo is None:
            self._fail(503, b"5.5.1 Error: send HELO/EHLO first")
            return
        if self.user is not None:
            self._fail(503, b"5.5.1 Error: already authenticated")
            return
        if self.sender is not None:
            self._fail(503, b"5.5.1 Error: MAIL transaction in progress")
            return
        args = rest.split()
        mech = args[0].upper() if args else b""
        if mech not in (b"PLAIN", b"LOGIN") or len(args) > 2:
            self._fail(504, b"5.5.4 Unsupported authentication mechanism")
        elif len(args) == 2:
            self._auth_step = "plain" if mech == b"PLAIN" else "login-user"
            self._auth_response(args[1])
        elif mech == b"PLAIN":
            self._auth_step = "plain"
            self._send(b"334 \r\n")
        else:
            self._auth_step = "login-user"
            self._reply(334, USERNAME_PROMPT)

    def _auth_response(self, response: bytes) -> None:
        step, self._auth_step = self._auth_step, None
        if response == b"*":
            self._fail(501, b"5.7.0 Authentication aborted")
            return
        if step == "plain":
            creds = sasl_plain(response)
            if creds is None:
                self._fail(501, b"5.5.2 Cannot decode the AUTH PLAIN response")
                return
            login, password = creds.login, creds.password
        else:
            value = b64decode(response)
            if value is None:
                self._fail(501, b"5.5.2 Cannot decode the AUTH LOGIN response")
                return
            if step == "login-user":
                self._auth_login = value
                self._auth_step = "login-pass"
                self._reply(334, PASSWORD_PROMPT)
                return
            login, password = self._auth_login, value
        if self.store.check_password(login, password):
            self.user = login.decode("utf-8")
            self._reply(235, b"2.7.0 Authentication successful")
        else:
            self._fail(535, b"5.7.8 Error: authentication failed")

    def _cmd_RSET(self, rest: bytes) -> None:
        self._reset_transaction()
        self._reply(250, b"2.0.0 Ok")

    def _cmd_NOOP(self, rest: bytes) -> None:
        self._reply(250, b"2.0.0 Ok")

    def _cmd_QUIT(self, rest: bytes) -> None:
        self._reply(221, b"2.0.0 Bye")
        self.closed = True

    def _cmd_VRFY(self, rest: bytes) -> None:
        self._reply(252, b"2.0.0 Cannot VRFY user, but will accept message")

    def _cmd_HELP(self, rest: bytes) -> None:
        self._reply(214, b"2.0.0 Commands: EHLO HELO AUTH MAIL RCPT DATA RSET NOOP QUIT "
                         b"VRFY XCLIENT")

    def _not_implemented(self, rest: bytes) -> None:
        self._fail(502, b"5.5.1 Error: command not implemented")

    _cmd_STARTTLS = _cmd_EXPN = _cmd_BDAT = _cmd_TURN = _not_implemented

    # -- the mail transaction -----------------------------------------------

    def _path(self, rest: bytes, keyword: bytes) -> tuple[bytes, list[bytes]] | None:
        """The address and parameters of MAIL FROM / RCPT TO; None (replied) if invalid."""
        m = _PATH.match(rest)
        if m is None or m.group(1).upper() != keyword:
            self._fail(501, b"5.5.4 Syntax: %s %s:<address>" % (
                b"MAIL" if keyword == b"FROM" else b"RCPT", keyword))
            return None
        address = m.group(2)
        if address.startswith(b"<"):
            address = address[1:-1]
        if address.startswith(b"@") and b":" in address:
            address = address.partition(b":")[2]     # an obsolete source route
        return address, m.group(3).split()

    def _cmd_MAIL(self, rest: bytes) -> None:
        if self.helo is None:
            self._fail(503, b"5.5.1 Error: send HELO/EHLO first")
            return
        if self.sender is not None:
            self._fail(503, b"5.5.1 Error: nested MAIL command")
            return
        parsed = self._path(rest, b"FROM")
        if parsed is None:
            return
        address, params = parsed
        if address and not _ADDRESS.match(address):
            self._fail(501, b"5.1.7 Bad sender address syntax")
            return
        for param in params:
            key, _, value = param.partition(b"=")
            key = key.upper()
            if key == b"SIZE" and value.isdigit():
                if int(value) > self.limits.message_size:
                    self._fail(552, b"5.3.4 Message size exceeds fixed limit")
                    return
            elif key == b"BODY" and value.upper() in (b"7BIT", b"8BITMIME") or key == b"AUTH" and value:
                pass
            else:
                self._fail(555, b"5.5.4 Unsupported option: " + param[:64])
                return
        self.sender = address
        self._reply(250, b"2.1.0 Ok")

    def _cmd_RCPT(self, rest: bytes) -> None:
        if self.sender is None:
            self._fail(503, b"5.5.1 Error: need MAIL command")
            return
        parsed = self._path(rest, b"TO")
        if parsed is None:
            return
        address, params = parsed
        self._rcpt_tried = True
        if params:
            self._fail(555, b"5.5.4 Unsupported option: " + params[0][:64])
            return
        if not _ADDRESS.match(address) and address.lower() != b"postmaster":
            self._fail(501, b"5.1.3 Bad recipient address syntax")
            return
        if len(self.recipients) >= self.limits.max_recipients:
            self._reply(452, b"4.5.3 Error: too many recipients")
            return
        user = self.store.recipient(address.decode("utf-8", "replace"))
        if user is None:
            self._fail(550, b"5.1.1 <%s>: Recipient address rejected: User unknown" % address)
            return
        if user not in self.recipients:
            self.recipients.append(user)
        self._reply(250, b"2.1.5 Ok")

    def _cmd_DATA(self, rest: bytes) -> None:
        if rest:
            self._fail(501, b"5.5.4 Syntax: DATA")
        elif self.sender is None:
            self._fail(503, b"5.5.1 Error: need MAIL command")
        elif not self.recipients:
            if self._rcpt_tried:
                self._fail(554, b"5.5.1 Error: no valid recipients")
            else:
                self._fail(503, b"5.5.1 Error: need RCPT command")
        else:
            self._data = []
            self._data_size = 0
            self._data_too_big = False
            self._after_crlf = True     # the DATA line's CRLF counts for CRLF "." CRLF
            self._reply(354, b"End data with <CR><LF>.<CR><LF>")

    def _data_line(self) -> bool:
        """Take one line of message data; False when more bytes are needed."""
        line = self.reader.read_line(self.limits.message_size)
        if line is None:
            return False
        if line is TOO_LONG:
            self._data_too_big = True
            self._data.clear()
            return True
        if line is SKIPPED:
            self._after_crlf = self.reader.skipped_crlf
            return True
        if line == b".\r\n" and self._after_crlf:
            self._end_of_data()
            return True
        if line.startswith(b"."):
            line = line[1:]
        self._after_crlf = line.endswith(b"\r\n")
        if not self._data_too_big:
            self._data_size += len(line)
            if self._data_size > self.limits.message_size:
                self._data_too_big = True
                self._data.clear()
            else:
                self._data.append(line)
        return True

    def _end_of_data(self) -> None:
        data, self._data = b"".join(self._data), None
        recipients = self.recipients
        self._reset_transaction()
        if self._data_too_big:
            self._fail(552, b"5.3.4 Message size exceeds fixed limit")
            return
        for user in recipients:
            self.store.deliver(user, data)
        self._reply(250, b"2.0.0 Ok: queued as %X" % next(_queue_ids))
