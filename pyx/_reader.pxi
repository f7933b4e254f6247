# Incremental command readers (see protocol/_reader.py, the reference).
#
# The byte loops below follow nginx's state machines, ngx_mail_pop3_parse_command(),
# ngx_mail_imap_parse_command() and ngx_mail_smtp_parse_command() in
# src/mail/ngx_mail_parse.c, and must give exactly the reference's results.

from libc.stdint cimport UINT64_MAX

# results of parse(); values as in protocol/_codes.py
cdef enum:
    R_AGAIN = 0
    R_OK = 1
    R_INVALID = 2
    R_LITERAL = 3

# parser states; values as in protocol/_reader.py
cdef enum:
    S_START = 0
    S_COMMAND = 1
    S_SKIP = 2
    S_SPACES = 3
    S_ARGUMENT = 4
    S_ALMOST_DONE = 5
    S_TAG = 6
    S_SPACES_BEFORE_COMMAND = 7
    S_BACKSLASH = 8
    S_LITERAL = 9
    S_NOSYNC = 10
    S_START_LITERAL = 11
    S_LITERAL_DATA = 12
    S_END_LITERAL = 13
    S_RAW = 14

cdef enum:
    P_POP3 = 1
    P_SMTP = 2
    P_IMAP = 3

# command codes; values as in protocol/_codes.py
cdef enum:
    IMAP_LOGIN = 1
    IMAP_LOGOUT = 2
    IMAP_CAPABILITY = 3
    IMAP_NOOP = 4
    IMAP_STARTTLS = 5
    IMAP_AUTHENTICATE = 6
    IMAP_ID = 7

cdef enum:
    POP3_USER = 1
    POP3_PASS = 2
    POP3_APOP = 3
    POP3_QUIT = 4
    POP3_CAPA = 5
    POP3_AUTH = 6
    POP3_NOOP = 7
    POP3_STLS = 8

cdef enum:
    SMTP_HELO = 1
    SMTP_EHLO = 2
    SMTP_AUTH = 3
    SMTP_QUIT = 4
    SMTP_NOOP = 5
    SMTP_MAIL = 6
    SMTP_RSET = 7
    SMTP_RCPT = 8
    SMTP_VRFY = 9
    SMTP_EXPN = 10
    SMTP_HELP = 11
    SMTP_STARTTLS = 12


cdef inline bint _is_letter(unsigned char ch) noexcept:
    return (0x41 <= ch <= 0x5A) or (0x61 <= ch <= 0x7A)


cdef inline bint _is_tag_char(unsigned char ch) noexcept:
    return (_is_letter(ch) or (0x30 <= ch <= 0x39)
            or ch == 0x2D or ch == 0x2E or ch == 0x5F)


cdef inline bint _word_is(const unsigned char *c, Py_ssize_t n, const char *w) noexcept:
    # w is upper case; the bytes in c are letters (checked by the parser)
    cdef Py_ssize_t i
    for i in range(n):
        if (c[i] & 0xDF) != <unsigned char> w[i]:
            return False
    return w[n] == 0


cdef int _match_word(int protocol, const unsigned char *c, Py_ssize_t n) noexcept:
    if protocol == P_IMAP:
        if n == 2:
            return IMAP_ID if _word_is(c, n, b"ID") else 0
        if n == 4:
            return IMAP_NOOP if _word_is(c, n, b"NOOP") else 0
        if n == 5:
            return IMAP_LOGIN if _word_is(c, n, b"LOGIN") else 0
        if n == 6:
            return IMAP_LOGOUT if _word_is(c, n, b"LOGOUT") else 0
        if n == 8:
            return IMAP_STARTTLS if _word_is(c, n, b"STARTTLS") else 0
        if n == 10:
            return IMAP_CAPABILITY if _word_is(c, n, b"CAPABILITY") else 0
        if n == 12:
            return IMAP_AUTHENTICATE if _word_is(c, n, b"AUTHENTICATE") else 0
        return 0
    if n == 8:
        if protocol == P_SMTP and _word_is(c, n, b"STARTTLS"):
            return SMTP_STARTTLS
        return 0
    if n != 4:
        return 0
    if protocol == P_POP3:
        if _word_is(c, n, b"USER"):
            return POP3_USER
        if _word_is(c, n, b"PASS"):
            return POP3_PASS
        if _word_is(c, n, b"APOP"):
            return POP3_APOP
        if _word_is(c, n, b"QUIT"):
            return POP3_QUIT
        if _word_is(c, n, b"CAPA"):
            return POP3_CAPA
        if _word_is(c, n, b"AUTH"):
            return POP3_AUTH
        if _word_is(c, n, b"NOOP"):
            return POP3_NOOP
        if _word_is(c, n, b"STLS"):
            return POP3_STLS
        return 0
    if _word_is(c, n, b"HELO"):
        return SMTP_HELO
    if _word_is(c, n, b"EHLO"):
        return SMTP_EHLO
    if _word_is(c, n, b"AUTH"):
        return SMTP_AUTH
    if _word_is(c, n, b"QUIT"):
        return SMTP_QUIT
    if _word_is(c, n, b"NOOP"):
        return SMTP_NOOP
    if _word_is(c, n, b"MAIL"):
        return SMTP_MAIL
    if _word_is(c, n, b"RSET"):
        return SMTP_RSET
    if _word_is(c, n, b"RCPT"):
        return SMTP_RCPT
    if _word_is(c, n, b"VRFY"):
        return SMTP_VRFY
    if _word_is(c, n, b"EXPN"):
        return SMTP_EXPN
    if _word_is(c, n, b"HELP"):
        return SMTP_HELP
    return 0


cdef class _Reader:
    """What the three readers share: the buffer, the result fields, the skip mode."""
    cdef public RelayBuffer buffer
    cdef public int state
    cdef public int command
    cdef public list args
    cdef public Py_ssize_t cmd_start
    cdef public Py_ssize_t arg_start
    cdef public Py_ssize_t arg_end
    cdef bint _fresh
    cdef int max_args
    cdef int continuation_command

    def __init__(self, RelayBuffer buffer not None):
        self.buffer = buffer
        self.state = S_START
        self.command = 0
        self.args = []
        self.cmd_start = 0
        self.arg_start = -1
        self.arg_end = 0
        self._fresh = False

    @property
    def in_progress(self):
        """True while the reader is inside a command or a SASL exchange."""
        return self.state != S_START

    def reset_state(self):
        """Back to the start of a command (nginx's handler: ``s->state = 0``)."""
        self.state = S_START
        self.arg_start = -1

    def expect_response(self):
        """Read the next line as a SASL response, as after the AUTH command."""
        self.state = S_ARGUMENT
        self.command = self.continuation_command
        self.arg_start = -1

    def command_text(self):
        """The command as sent, from its first byte to the end of its last argument."""
        cdef Py_ssize_t end = self.arg_end if self.args else self.cmd_start
        return (<char *> self.buffer.data)[self.cmd_start:end]

    cdef int _begin(self) except -1:
        if self._fresh:
            self.args = []
            self._fresh = False
        if self.state == S_ARGUMENT and self.arg_start < 0:
            # a SASL continuation line: its first byte starts argument 1
            self.arg_start = self.buffer.pos
        return self.state

    cdef int _push(self, Py_ssize_t start, Py_ssize_t end) except -1:
        self.args.append((<char *> self.buffer.data)[start:end])
        self.arg_end = end
        return 0

    cdef int _done(self, Py_ssize_t p) noexcept:
        self.buffer.pos = p + 1
        if self.command == self.continuation_command:
            self.state = S_ARGUMENT
        else:
            self.state = S_START
        self.arg_start = -1
        self._fresh = True
        return R_OK

    cdef int _invalid(self, Py_ssize_t p) noexcept:
        cdef RelayBuffer b = self.buffer
        cdef const unsigned char *lf
        self.state = S_SKIP
        lf = <const unsigned char *> memchr(b.data + p, 0x0A, b.last - p)
        if lf == NULL:
            b.pos = b.last
            return R_AGAIN
        self.state = S_START
        self.arg_start = -1
        b.pos = (lf - b.data) + 1
        self._fresh = True
        self._rejected_line(lf - b.data)
        return R_INVALID

    cdef void _rejected_line(self, Py_ssize_t lf) noexcept:
        pass


cdef class _SimpleReader(_Reader):
    """POP3 and SMTP: a 4-letter (or STARTTLS) command word and plain arguments."""
    cdef int protocol
    cdef int space_command_a
    cdef int space_command_b

    def parse(self):
        """Advance over the buffered bytes; see protocol/_reader.py."""
        cdef int state = self._begin()
        cdef RelayBuffer b = self.buffer
        cdef const unsigned char *data = b.data
        cdef Py_ssize_t p = b.pos
        cdef Py_ssize_t last = b.last
        cdef unsigned char ch
        cdef int code
        while p < last:
            ch = data[p]
            if state == S_START:
                self.cmd_start = p
                state = S_COMMAND
            if state == S_COMMAND:
                if ch == 0x20 or ch == 0x0D or ch == 0x0A:
                    code = _match_word(self.protocol, data + self.cmd_start, p - self.cmd_start)
                    if code == 0:
                        return self._invalid(p)
                    self.command = code
                    if ch == 0x20:
                        state = S_SPACES
                    elif ch == 0x0D:
                        state = S_ALMOST_DONE
                    else:
                        return self._done(p)
                elif not _is_letter(ch):
                    return self._invalid(p)
            elif state == S_SKIP:
                return self._invalid(p)
            elif state == S_SPACES:
                if ch == 0x20:
                    pass
                elif ch == 0x0D:
                    state = S_ALMOST_DONE
                elif ch == 0x0A:
                    return self._done(p)
                elif len(self.args) < self.max_args:
                    state = S_ARGUMENT
                    self.arg_start = p
                else:
                    return self._invalid(p)
            elif state == S_ARGUMENT:
                if ch == 0x20 and (self.command == self.space_command_a
                                   or self.command == self.space_command_b):
                    pass
                elif ch == 0x20 or ch == 0x0D or ch == 0x0A:
                    self._push(self.arg_start, p)
                    self.arg_start = -1
                    if ch == 0x20:
                        state = S_SPACES
                    elif ch == 0x0D:
                        state = S_ALMOST_DONE
                    else:
                        return self._done(p)
            elif state == S_ALMOST_DONE:
                if ch == 0x0A:
                    return self._done(p)
                return self._invalid(p)
            p += 1
        b.pos = p
        self.state = state
        return R_AGAIN


cdef class Pop3Reader(_SimpleReader):
    """POP3 commands (ngx_mail_pop3_parse_command()): USER/PASS keep spaces inside
    their argument."""

    def __init__(self, RelayBuffer buffer not None):
        _SimpleReader.__init__(self, buffer)
        self.protocol = P_POP3
        self.max_args = 3
        self.continuation_command = POP3_AUTH
        self.space_command_a = POP3_USER
        self.space_command_b = POP3_PASS


cdef class SmtpReader(_SimpleReader):
    """SMTP commands (ngx_mail_smtp_parse_command()): up to 11 arguments, STARTTLS as
    an 8-letter word."""

    def __init__(self, RelayBuffer buffer not None):
        _SimpleReader.__init__(self, buffer)
        self.protocol = P_SMTP
        self.max_args = 11
        self.continuation_command = SMTP_AUTH
        self.space_command_a = -1
        self.space_command_b = -1


cdef class ImapReader(_Reader):
    """IMAP commands (ngx_mail_imap_parse_command()): tag, command, atoms, quoted
    strings and literals."""
    cdef public bytes tag
    cdef public Py_ssize_t tag_start
    cdef public bint quoted
    cdef public bint backslash
    cdef public bint nosync
    cdef public unsigned long long literal_len
    cdef public bint literal_rejected

    def __init__(self, RelayBuffer buffer not None):
        _Reader.__init__(self, buffer)
        self.max_args = 3
        self.continuation_command = IMAP_AUTHENTICATE
        self.tag = b""
        self.tag_start = 0
        self.quoted = False
        self.backslash = False
        self.nosync = False
        self.literal_len = 0
        self.literal_rejected = False

    cdef int _invalid(self, Py_ssize_t p) noexcept:
        self.quoted = False
        self.backslash = False
        self.nosync = False
        self.literal_len = 0
        return _Reader._invalid(self, p)

    cdef void _rejected_line(self, Py_ssize_t lf) noexcept:
        # a rejected line announcing a non-synchronizing literal: the client would
        # now stream the literal, so nginx closes after the reply (the "invalid:"
        # label of ngx_mail_imap_parse_command() sets s->quit)
        cdef const unsigned char *data = self.buffer.data
        cdef Py_ssize_t q
        if lf > 4:
            q = lf - 1
            if data[q] == 0x0D:
                q -= 1
            if data[q] == 0x7D and data[q - 1] == 0x2B:
                self.literal_rejected = True

    cdef int _push_quoted(self, Py_ssize_t p) except -1:
        cdef const unsigned char *data = self.buffer.data
        cdef Py_ssize_t src = self.arg_start
        cdef Py_ssize_t o = 0
        cdef bytearray out
        cdef unsigned char *dst
        if not self.backslash:
            return self._push(self.arg_start, p)
        self.backslash = False
        out = bytearray(p - src)
        dst = <unsigned char *> <char *> out
        while src < p:
            if data[src] == 0x5C and src + 1 < p:
                src += 1
            dst[o] = data[src]
            o += 1
            src += 1
        self.args.append((<char *> dst)[:o])
        self.arg_end = p
        return 0

    def parse(self):
        """Advance over the buffered bytes; see protocol/_reader.py."""
        cdef int state
        cdef RelayBuffer b = self.buffer
        cdef const unsigned char *data = b.data
        cdef Py_ssize_t p
        cdef Py_ssize_t last = b.last
        cdef unsigned char ch
        cdef int code
        cdef unsigned long long digit
        if self._fresh:
            self.literal_rejected = False
        state = self._begin()
        p = b.pos
        while p < last:
            ch = data[p]
            if state == S_LITERAL_DATA:
                # "{0}" still takes one byte, as nginx's countdown does
                if self.literal_len:
                    self.literal_len -= 1
                if not self.literal_len:
                    self._push(self.arg_start, p + 1)
                    self.arg_start = -1
                    state = S_END_LITERAL
                p += 1
                continue
            if state == S_START:
                self.tag_start = p
                # the unterminated-quote flag is reset per command, where nginx keeps
                # it (docs/differences.md#imap)
                self.quoted = False
                state = S_TAG
            if state == S_TAG:
                if ch == 0x20:
                    self.tag = (<char *> data)[self.tag_start:p + 1]
                    state = S_SPACES_BEFORE_COMMAND
                elif ch == 0x0D or ch == 0x0A:
                    return self._invalid(p)
                elif not _is_tag_char(ch) or p - self.tag_start > 31:
                    return self._invalid(p)
            elif state == S_SKIP:
                return self._invalid(p)
            elif state == S_SPACES_BEFORE_COMMAND:
                if ch == 0x20:
                    pass
                elif ch == 0x0D or ch == 0x0A:
                    return self._invalid(p)
                else:
                    self.cmd_start = p
                    state = S_COMMAND
            elif state == S_COMMAND:
                if ch == 0x20 or ch == 0x0D or ch == 0x0A:
                    code = _match_word(P_IMAP, data + self.cmd_start, p - self.cmd_start)
                    if code == 0:
                        return self._invalid(p)
                    self.command = code
                    if ch == 0x20 and code == IMAP_ID:
                        # RFC 2971's parenthesized list: the protocol module parses it
                        self.arg_start = p + 1
                        state = S_RAW
                    elif ch == 0x20:
                        state = S_SPACES
                    elif ch == 0x0D:
                        state = S_ALMOST_DONE
                    else:
                        return self._done(p)
                elif not _is_letter(ch):
                    return self._invalid(p)
            elif state == S_SPACES:
                if ch == 0x20:
                    pass
                elif ch == 0x0D:
                    state = S_ALMOST_DONE
                elif ch == 0x0A:
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
                if ch == 0x20 and self.quoted:
                    pass
                elif ch == 0x22 and not self.quoted:
                    pass
                elif ch == 0x22 or ch == 0x20 or ch == 0x0D or ch == 0x0A:
                    if ch == 0x22:
                        self.quoted = False
                    self._push_quoted(p)
                    self.arg_start = -1
                    if ch == 0x0D:
                        state = S_ALMOST_DONE
                    elif ch == 0x0A:
                        return self._done(p)
                    else:
                        state = S_SPACES
                elif ch == 0x5C and self.quoted:
                    self.backslash = True
                    state = S_BACKSLASH
            elif state == S_BACKSLASH:
                if ch == 0x0D or ch == 0x0A:
                    return self._invalid(p)
                state = S_ARGUMENT
            elif state == S_RAW:
                if ch == 0x0D or ch == 0x0A:
                    self._push(self.arg_start, p)
                    self.arg_start = -1
                    if ch == 0x0A:
                        return self._done(p)
                    state = S_ALMOST_DONE
            elif state == S_LITERAL:
                if 0x30 <= ch <= 0x39:
                    digit = ch - 0x30
                    if self.literal_len > (UINT64_MAX - digit) // 10:
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
                if ch == 0x0D:
                    pass
                elif ch == 0x0A:
                    self.arg_start = p + 1
                    if not self.nosync:
                        b.pos = p + 1
                        self.state = S_LITERAL_DATA
                        return R_LITERAL
                    self.nosync = False
                    state = S_LITERAL_DATA
                else:
                    return self._invalid(p)
            elif state == S_END_LITERAL:
                if ch == 0x20:
                    state = S_SPACES
                elif ch == 0x0D:
                    state = S_ALMOST_DONE
                elif ch == 0x0A:
                    return self._done(p)
                else:
                    return self._invalid(p)
            elif state == S_ALMOST_DONE:
                if ch == 0x0A:
                    return self._done(p)
                return self._invalid(p)
            p += 1
        b.pos = p
        self.state = state
        return R_AGAIN
