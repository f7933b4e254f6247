"""Incremental command readers: the pure-Python reference of ``pyx/_reader.pxi``.

Each reader parses client commands in place inside a :class:`RelayBuffer` (the
session's command buffer), byte by byte, exactly as nginx's
ngx_mail_pop3_parse_command(), ngx_mail_imap_parse_command() and
ngx_mail_smtp_parse_command() in src/mail/ngx_mail_parse.c
(docs/nginx-behaviour.md#command-reading).  State is kept across calls, so a command
may arrive in any number of pieces.

``parse()`` returns one of ``AGAIN``, ``OK``, ``INVALID`` or (IMAP) ``LITERAL``.
After ``OK``, ``command`` and ``args`` describe the command; after ``INVALID`` the
rejected line has been skipped up to and including its LF.  ``AGAIN`` means more
bytes are needed; when the buffer is then full, the command is too long (the caller
decides what to do, as nginx's ``ngx_mail_read_command`` does).

The buffer is never compacted.  The caller resets it (``buffer.reset_if_drained()``)
at the points where nginx does, which is what makes a pipelined burst hit the line
limit exactly as it does with nginx.
"""

from __future__ import annotations

from mailgate.protocol import _codes
from mailgate.protocol._codes import AGAIN, INVALID, LITERAL, OK

SP = 0x20
CR = 0x0D
LF = 0x0A
SIZE_MAX = (1 << 64) - 1

# parser states shared by the three readers
S_START = 0
S_COMMAND = 1
S_SKIP = 2              # nginx sw_invalid: discard up to the next LF
S_SPACES = 3            # spaces before an argument
S_ARGUMENT = 4
S_ALMOST_DONE = 5
# IMAP only
S_TAG = 6
S_SPACES_BEFORE_COMMAND = 7
S_BACKSLASH = 8
S_LITERAL = 9
S_NOSYNC = 10
S_START_LITERAL = 11
S_LITERAL_DATA = 12
S_END_LITERAL = 13
S_RAW = 14              # IMAP ID: the rest of the line is one argument, parsed later

_POP3_WORDS = {
    b"USER": _codes.POP3_USER, b"PASS": _codes.POP3_PASS, b"APOP": _codes.POP3_APOP,
    b"QUIT": _codes.POP3_QUIT, b"CAPA": _codes.POP3_CAPA, b"AUTH": _codes.POP3_AUTH,
    b"NOOP": _codes.POP3_NOOP, b"STLS": _codes.POP3_STLS,
}
_SMTP_WORDS = {
    b"HELO": _codes.SMTP_HELO, b"EHLO": _codes.SMTP_EHLO, b"AUTH": _codes.SMTP_AUTH,
    b"QUIT": _codes.SMTP_QUIT, b"NOOP": _codes.SMTP_NOOP, b"MAIL": _codes.SMTP_MAIL,
    b"RSET": _codes.SMTP_RSET, b"RCPT": _codes.SMTP_RCPT, b"VRFY": _codes.SMTP_VRFY,
    b"EXPN": _codes.SMTP_EXPN, b"HELP": _codes.SMTP_HELP, b"STARTTLS": _codes.SMTP_STARTTLS,
}
_IMAP_WORDS = {
    b"NOOP": _codes.IMAP_NOOP, b"LOGIN": _codes.IMAP_LOGIN, b"LOGOUT": _codes.IMAP_LOGOUT,
    b"STARTTLS": _codes.IMAP_STARTTLS, b"CAPABILITY": _codes.IMAP_CAPABILITY,
    b"AUTHENTICATE": _codes.IMAP_AUTHENTICATE, b"ID": _codes.IMAP_ID,
}


def _is_letter(ch: int) -> bool:
    return 0x41 <= ch <= 0x5A or 0x61 <= ch <= 0x7A


def _is_tag_char(ch: int) -> bool:
    return (_is_letter(ch) or 0x30 <= ch <= 0x39
            or ch == 0x2D or ch == 0x2E or ch == 0x5F)


def _unescape(raw: bytes) -> bytes:
    """``\\x`` -> ``x`` (a quoted IMAP argument that contained a backslash)."""
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        ch = raw[i]
        i += 1
        if ch == 0x5C and i < n:
            ch = raw[i]
            i += 1
        out.append(ch)
    return bytes(out)


class _Reader:
    """What the three readers share: the buffer, the result fields, the skip mode."""

    max_args = 3
    continuation_command = 0        # the command after which SASL lines follow

    def __init__(self, buffer) -> None:
        self.buffer = buffer
        self.state = S_START
        self.command = 0
        self.args: list[bytes] = []
        self.cmd_start = 0
        self.arg_start = -1
        self.arg_end = 0
        self._fresh = False

    @property
    def in_progress(self) -> bool:
        """True while the reader is inside a command or a SASL exchange."""
        return self.state != S_START

    def reset_state(self) -> None:
        """Back to the start of a command (nginx's handler: ``s->state = 0``)."""
        self.state = S_START
        self.arg_start = -1

    def expect_response(self) -> None:
        """Read the next line as a SASL response, as after the AUTH command."""
        self.state = S_ARGUMENT
        self.command = self.continuation_command
        self.arg_start = -1

    def command_text(self) -> bytes:
        """The command as sent, from its first byte to the end of its last argument."""
        end = self.arg_end if self.args else self.cmd_start
        return bytes(self.buffer.contents()[self.cmd_start:end])

    def _begin(self) -> int:
        if self._fresh:
            self.args = []
            self._fresh = False
        if self.state == S_ARGUMENT and self.arg_start < 0:
            # a SASL continuation line: its first byte starts argument 1
            self.arg_start = self.buffer.pos
        return self.state

    def _push(self, data, start: int, end: int) -> None:
        self.args.append(bytes(data[start:end]))
        self.arg_end = end

    def _done(self, p: int) -> int:
        self.buffer.pos = p + 1
        if self.command == self.continuation_command:
            self.state = S_ARGUMENT
        else:
            self.state = S_START
        self.arg_start = -1
        self._fresh = True
        return OK

    def _invalid(self, p: int) -> int:
        self.state = S_SKIP
        data = self.buffer._storage
        last = self.buffer.last
        lf = data.find(b"\n", p, last)
        if lf < 0:
            self.buffer.pos = last
            return AGAIN
        self.state = S_START
        self.arg_start = -1
        self.buffer.pos = lf + 1
        self._fresh = True
        self._rejected_line(data, lf)
        return INVALID

    def _rejected_line(self, data, lf: int) -> None:
        """Hook for IMAP's non-synchronizing literal check."""


class _SimpleReader(_Reader):
    """POP3 and SMTP: a 4-letter (or STARTTLS) command word and plain arguments."""

    words: dict[bytes, int] = {}
    space_in_argument = ()          # commands whose single argument keeps spaces

    def parse(self) -> int:
        """Advance over the buffered bytes; see the module docstring."""
        # A documented mirror: the command-word, spaces, argument and line-end states of
        # this loop and of ImapReader.parse() are alike on purpose.  nginx keeps
        # ngx_mail_pop3_parse_command() and ngx_mail_smtp_parse_command() apart from
        # ngx_mail_imap_parse_command() (src/mail/ngx_mail_parse.c); each reader follows
        # its own parser state for state in one byte loop, with no call per byte
        # (docs/nginx-behaviour.md#command-reading).
        state = self._begin()
        b = self.buffer
        data = b._storage
        p = b.pos
        last = b.last
        while p < last:
            ch = data[p]
            if state == S_START:
                self.cmd_start = p
                state = S_COMMAND
            if state == S_COMMAND:
                if ch == SP or ch == CR or ch == LF:
                    code = self.words.get(bytes(data[self.cmd_start:p]).upper(), 0)
                    if not code:
                        return self._invalid(p)
                    self.command = code
                    if ch == SP:
                        state = S_SPACES
                    elif ch == CR:
                        state = S_ALMOST_DONE
                    else:
                        return self._done(p)
                elif not _is_letter(ch):
                    return self._invalid(p)
            elif state == S_SKIP:
                return self._invalid(p)
            elif state == S_SPACES:
                if ch == SP:
                    pass
                elif ch == CR:
                    state = S_ALMOST_DONE
                elif ch == LF:
                    return self._done(p)
                elif len(self.args) < self.max_args:
                    state = S_ARGUMENT
                    self.arg_start = p
                else:
                    return self._invalid(p)
            elif state == S_ARGUMENT:
                if ch == SP and self.command in self.space_in_argument:
                    pass
                elif ch == SP or ch == CR or ch == LF:
                    self._push(data, self.arg_start, p)
                    self.arg_start = -1
                    if ch == SP:
                        state = S_SPACES
                    elif ch == CR:
                        state = S_ALMOST_DONE
                    else:
                        return self._done(p)
            elif state == S_ALMOST_DONE:
                if ch == LF:
                    return self._done(p)
                return self._invalid(p)
            p += 1
        b.pos = p
        self.state = state
        return AGAIN


class Pop3Reader(_SimpleReader):
    """POP3 commands (ngx_mail_pop3_parse_command()): USER/PASS keep spaces inside
    their argument."""

    words = _POP3_WORDS
    space_in_argument = (_codes.POP3_USER, _codes.POP3_PASS)
    continuation_command = _codes.POP3_AUTH


class SmtpReader(_SimpleReader):
    """SMTP commands (ngx_mail_smtp_parse_command()): up to 11 arguments, STARTTLS as
    an 8-letter word."""

    words = _SMTP_WORDS
    max_args = 11
    continuation_command = _codes.SMTP_AUTH


class ImapReader(_Reader):
    """IMAP commands (ngx_mail_imap_parse_command()): tag, command, atoms, quoted
    strings and literals."""

    continuation_command = _codes.IMAP_AUTHENTICATE

    def __init__(self, buffer) -> None:
        super().__init__(buffer)
        self.tag = b""
        self.tag_start = 0
        self.quoted = False
        self.backslash = False
        self.nosync = False
        self.literal_len = 0
        self.literal_rejected = False

    def _begin(self) -> int:
        if self._fresh:
            self.literal_rejected = False
        return super()._begin()

    def _invalid(self, p: int) -> int:
        self.quoted = False
        self.backslash = False
        self.nosync = False
        self.literal_len = 0
        return super()._invalid(p)

    def _rejected_line(self, data, lf: int) -> None:
        # a rejected line announcing a non-synchronizing literal: the client would
        # now stream the literal, so nginx closes after the reply (the "invalid:"
        # label of ngx_mail_imap_parse_command() sets s->quit)
        if lf > 4:
            q = lf - 1
            if data[q] == CR:
                q -= 1
            if data[q] == 0x7D and data[q - 1] == 0x2B:
                self.literal_rejected = True

    def _push_quoted(self, data, p: int) -> None:
        raw = bytes(data[self.arg_start:p])
        if self.backslash:
            raw = _unescape(raw)
            self.backslash = False
        self.args.append(raw)
        self.arg_end = p

    def parse(self) -> int:
        """Advance over the buffered bytes; see the module docstring."""
        # The documented mirror of _SimpleReader.parse(): this loop follows
        # ngx_mail_imap_parse_command() of src/mail/ngx_mail_parse.c state for state, as
        # that one follows the POP3 and SMTP parsers (docs/nginx-behaviour.md#command-reading).
        state = self._begin()
        b = self.buffer
        data = b._storage
        p = b.pos
        last = b.last
        while p < last:
            ch = data[p]
            if state == S_START:
                self.tag_start = p
                # the unterminated-quote flag is reset per command, where nginx keeps
                # it (docs/differences.md#imap)
                self.quoted = False
                state = S_TAG
            if state == S_TAG:
                if ch == SP:
                    self.tag = bytes(data[self.tag_start:p + 1])
                    state = S_SPACES_BEFORE_COMMAND
                elif ch == CR or ch == LF:
                    return self._invalid(p)
                elif not _is_tag_char(ch) or p - self.tag_start > 31:
                    return self._invalid(p)
            elif state == S_SKIP:
                return self._invalid(p)
            elif state == S_SPACES_BEFORE_COMMAND:
                if ch == SP:
                    pass
                elif ch == CR or ch == LF:
                    return self._invalid(p)
                else:
                    self.cmd_start = p
                    state = S_COMMAND
            elif state == S_COMMAND:
                if ch == SP or ch == CR or ch == LF:
                    code = _IMAP_WORDS.get(bytes(data[self.cmd_start:p]).upper(), 0)
                    if not code:
                        return self._invalid(p)
                    self.command = code
                    if ch == SP and code == _codes.IMAP_ID:
                        # RFC 2971's parenthesized list: the protocol module parses it
                        self.arg_start = p + 1
                        state = S_RAW
                    elif ch == SP:
                        state = S_SPACES
                    elif ch == CR:
                        state = S_ALMOST_DONE
                    else:
                        return self._done(p)
                elif not _is_letter(ch):
                    return self._invalid(p)
            elif state == S_SPACES:
                if ch == SP:
                    pass
                elif ch == CR:
                    state = S_ALMOST_DONE
                elif ch == LF:
                    return self._done(p)
                elif len(self.args) >= 3:
                    return self._invalid(p)
                elif ch == 0x22:
                    self.quoted = True
                    self.arg_start = p + 1
                    state = S_ARGUMENT
                elif ch == 0x7B:
                    state = S_LITERAL
                else:
                    self.arg_start = p
                    state = S_ARGUMENT
            elif state == S_ARGUMENT:
                if ch == SP and self.quoted:
                    pass
                elif ch == 0x22 and not self.quoted:
                    pass
                elif ch == 0x22 or ch == SP or ch == CR or ch == LF:
                    if ch == 0x22:
                        self.quoted = False
                    self._push_quoted(data, p)
                    self.arg_start = -1
                    if ch == CR:
                        state = S_ALMOST_DONE
                    elif ch == LF:
                        return self._done(p)
                    else:
                        state = S_SPACES
                elif ch == 0x5C and self.quoted:
                    self.backslash = True
                    state = S_BACKSLASH
            elif state == S_BACKSLASH:
                if ch == CR or ch == LF:
                    return self._invalid(p)
                state = S_ARGUMENT
            elif state == S_RAW:
                if ch == CR or ch == LF:
                    self._push(data, self.arg_start, p)
                    self.arg_start = -1
                    if ch == LF:
                        return self._done(p)
                    state = S_ALMOST_DONE
            elif state == S_LITERAL:
                if 0x30 <= ch <= 0x39:
                    digit = ch - 0x30
                    if self.literal_len > (SIZE_MAX - digit) // 10:
                        return self._invalid(p)
                    self.literal_len = self.literal_len * 10 + digit
                elif ch == 0x7D:
                    state = S_START_LITERAL
                elif ch == 0x2B:
                    state = S_NOSYNC
                else:
                    return self._invalid(p)
            elif state == S_NOSYNC:
                if ch != 0x7D:
                    return self._invalid(p)
                self.nosync = True
                state = S_START_LITERAL
            elif state == S_START_LITERAL:
                if ch == CR:
                    pass
                elif ch == LF:
                    self.arg_start = p + 1
                    if not self.nosync:
                        b.pos = p + 1
                        self.state = S_LITERAL_DATA
                        return LITERAL
                    self.nosync = False
                    state = S_LITERAL_DATA
                else:
                    return self._invalid(p)
            elif state == S_LITERAL_DATA:
                # "{0}" still takes one byte, as nginx's countdown does
                if self.literal_len:
                    self.literal_len -= 1
                if not self.literal_len:
                    self._push(data, self.arg_start, p + 1)
                    self.arg_start = -1
                    state = S_END_LITERAL
            elif state == S_END_LITERAL:
                if ch == SP:
                    state = S_SPACES
                elif ch == CR:
                    state = S_ALMOST_DONE
                elif ch == LF:
                    return self._done(p)
                else:
                    return self._invalid(p)
            elif state == S_ALMOST_DONE:
                if ch == LF:
                    return self._done(p)
                return self._invalid(p)
            p += 1
        b.pos = p
        self.state = state
        return AGAIN
