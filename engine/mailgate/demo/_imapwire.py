"""IMAP4rev1 syntax for the demo server: reading a command, writing data items.

A command arrives whole (its lines and literals, as the client sent them; the
session's framing has already collected every literal).  :func:`parse_command`
turns it into a tag, a command name and a list of arguments: :class:`Atom` for
atoms (``NIL``, ``\\Seen``, ``1:*``, ``BODY.PEEK[HEADER.FIELDS (To)]<0.10>``),
plain ``bytes`` for strings (quoted or literal), Python lists for parenthesized
lists.  Syntax errors raise :class:`Bad`.
"""

from __future__ import annotations

import datetime as _dt
import re

_CR, _LF, _SP = 0x0D, 0x0A, 0x20
_DQUOTE, _BACKSLASH = 0x22, 0x5C
_LPAREN, _RPAREN, _LBRACE, _LBRACKET, _RBRACKET = 0x28, 0x29, 0x7B, 0x5B, 0x5D

# bytes that end an atom; "[" opens a section that may hold spaces and parens
_ATOM_END = frozenset(b" ()\"\r\n")
_TAG_BYTES = frozenset(b"!#$&'+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`"
                       b"abcdefghijklmnopqrstuvwxyz|~") - {ord("+")}
MAX_NUMBER = 0xFFFFFFFF

# a line that ends by announcing a literal: "{12}" or, with LITERAL+, "{12+}"
LITERAL_AT_END = re.compile(rb"\{(\d{1,20})(\+?)\}\r?\n\Z")
_LITERAL = re.compile(rb"\{(\d{1,20})\+?\}\r?\n")


class Bad(Exception):
    """A syntax error: the BAD reply's text; tagged when ``tag`` is known."""

    def __init__(self, text: str, tag: bytes | None = None) -> None:
        super().__init__(text)
        self.tag = tag


class No(Exception):
    """The command cannot be carried out: the tagged NO reply's text."""


class Atom(bytes):
    """An atom (as opposed to a quoted or literal string)."""

    def upper_str(self) -> str:
        """The atom upper-cased, as text (atoms are 7-bit)."""
        return self.decode("latin-1").upper()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        d, p = self.data, self.pos
        return p >= len(d) or d[p] == _LF or (d[p] == _CR and p + 1 < len(d) and d[p + 1] == _LF)

    def spaces(self) -> bool:
        start = self.pos
        while self.pos < len(self.data) and self.data[self.pos] == _SP:
            self.pos += 1
        return self.pos > start

    def token(self):
        ch = self.data[self.pos]
        if ch == _DQUOTE:
            return self.quoted()
        if ch == _LBRACE:
            return self.literal()
        if ch == _LPAREN:
            return self.list()
        if ch == _RPAREN:
            raise Bad("unexpected )")
        return self.atom()

    def quoted(self) -> bytes:
        d = self.data
        out = bytearray()
        p = self.pos + 1
        while p < len(d):
            ch = d[p]
            if ch == _DQUOTE:
                self.pos = p + 1
                return bytes(out)
            if ch == _BACKSLASH:
                p += 1
                if p >= len(d) or d[p] not in (_DQUOTE, _BACKSLASH):
                    raise Bad("invalid escape in quoted string")
                ch = d[p]
            elif ch in (_CR, _LF, 0):
                raise Bad("unterminated quoted string")
            out.append(ch)
            p += 1
        raise Bad("unterminated quoted string")

    def literal(self) -> bytes:
        d = self.data
        m = _LITERAL.match(d, self.pos)
        if m is None:
            raise Bad("invalid literal")
        n = int(m.group(1))
        start = m.end()
        if start + n > len(d):
            raise Bad("literal longer than the command")
        self.pos = start + n
        return d[start:self.pos]

    def list(self) -> list:
        self.pos += 1
        items: list = []
        while True:
            if self.pos >= len(self.data) or self.at_end():
                raise Bad("unterminated list")
            if self.data[self.pos] == _RPAREN:
                self.pos += 1
                return items
            if items and not self.spaces():
                raise Bad("missing space in list")
            if self.data[self.pos] == _RPAREN:
                raise Bad("space before )")
            items.append(self.token())

    def atom(self) -> Atom:
        d = self.data
        start = p = self.pos
        depth = 0
        while p < len(d):
            ch = d[p]
            if ch == _LBRACKET:
                depth += 1
            elif ch == _RBRACKET and depth:
                depth -= 1
            elif ch < 0x20 or ch == 0x7F or (ch in _ATOM_END and not depth):
                break
            p += 1
        if depth:
            raise Bad("unterminated [")
        if p == start:
            raise Bad("expected an atom")
        self.pos = p
        return Atom(d[start:p])


def parse_command(data: bytes) -> tuple[bytes, str, list]:
    """``(tag, COMMAND, args)`` of one complete command (lines and literals).

    Raises :class:`Bad`; its ``tag`` attribute is the tag when one was read.
    """
    r = _Reader(data)
    p = 0
    while p < len(data) and data[p] in _TAG_BYTES:
        p += 1
    tag = data[:p]
    if not tag or p >= len(data) or data[p] != _SP:
        if tag and p < len(data) and data[p] in (_CR, _LF):
            raise Bad("missing command", tag)
        raise Bad("invalid tag")
    r.pos = p + 1
    try:
        if r.at_end():
            raise Bad("missing command")
        name = r.atom()
        if not name.isalpha():
            raise Bad("invalid command name")
        args = []
        while not r.at_end():
            if not r.spaces():
                raise Bad("missing space between arguments")
            if r.at_end():
                raise Bad("trailing space")
            args.append(r.token())
        rest = data[r.pos:]
        if rest not in (b"\r\n", b"\n"):
            raise Bad("garbage after the command")
    except Bad as exc:
        exc.tag = tag
        raise
    return tag, name.upper_str(), args


def parse_atoms(data: bytes) -> list:
    """Tokens of a text that is not a command (a FETCH section's field list)."""
    r = _Reader(data)
    out = []
    while r.pos < len(data):
        if out and not r.spaces():
            raise Bad("missing space")
        if r.pos >= len(data) or r.at_end():
            raise Bad("trailing space")
        out.append(r.token())
    return out


# -- argument shapes ----------------------------------------------------------

def astring(arg) -> bytes:
    """An atom or a string argument (mailbox names, user names, passwords)."""
    if isinstance(arg, list):
        raise Bad("expected a string, got a list")
    return bytes(arg)


def atom(arg, what: str) -> Atom:
    """An atom argument."""
    if not isinstance(arg, Atom):
        raise Bad(f"expected {what}")
    return arg


def number(arg, what: str = "a number", *, nonzero: bool = False) -> int:
    """A 32-bit unsigned number argument."""
    if not isinstance(arg, bytes) or not arg.isdigit() or len(arg) > 10:
        raise Bad(f"expected {what}")
    n = int(arg)
    if n > MAX_NUMBER or (nonzero and n == 0):
        raise Bad(f"invalid {what}")
    return n


def mailbox_name(arg) -> str:
    """A mailbox argument: INBOX in any case names INBOX."""
    raw = astring(arg)
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Bad("mailbox names are 7-bit (modified UTF-7)") from None
    return "INBOX" if name.upper() == "INBOX" else name


def flag_list(arg) -> list[str]:
    """A flag list, ``(\\Seen foo)``, or a single flag or space-separated flags."""
    items = arg if isinstance(arg, list) else [arg]
    flags = []
    for item in items:
        if not isinstance(item, Atom) or b"[" in item or b"*" in item or b"%" in item:
            raise Bad("invalid flag")
        text = item.decode("latin-1")
        if text.startswith("\\") and (len(text) == 1 or not text[1:].isalpha()):
            raise Bad("invalid flag")
        flags.append(text)
    return flags


class SequenceSet:
    """A sequence set: ``1,3:5,7:*``.  ``*`` is resolved against a maximum later."""

    def __init__(self, ranges: list[tuple[int | None, int | None]]) -> None:
        self.ranges = ranges
        self._resolved: tuple[int, list[tuple[int, int]]] | None = None

    @classmethod
    def parse(cls, arg) -> SequenceSet:
        """Parse a sequence-set atom; raises :class:`Bad`."""
        if not isinstance(arg, Atom):
            raise Bad("expected a sequence set")
        ranges = []
        for item in bytes(arg).split(b","):
            lo, colon, hi = item.partition(b":")
            first = cls._value(lo)
            ranges.append((first, cls._value(hi) if colon else first))
        return cls(ranges)

    @staticmethod
    def _value(text: bytes) -> int | None:
        if text == b"*":
            return None
        if not text.isdigit() or len(text) > 10 or text.startswith(b"0"):
            raise Bad("invalid sequence set")
        n = int(text)
        if n > MAX_NUMBER:
            raise Bad("invalid sequence set")
        return n

    def bounds(self, largest: int) -> list[tuple[int, int]]:
        """``(low, high)`` ranges, ``*`` replaced by ``largest``."""
        out = []
        for a, b in self.ranges:
            a = largest if a is None else a
            b = largest if b is None else b
            out.append((a, b) if a <= b else (b, a))
        return out

    def contains(self, n: int, largest: int) -> bool:
        """Whether ``n`` is in the set, ``*`` standing for ``largest``."""
        # called once per message with the same ``largest``: resolve once
        if self._resolved is None or self._resolved[0] != largest:
            self._resolved = (largest, self.bounds(largest))
        return any(lo <= n <= hi for lo, hi in self._resolved[1])


# -- output -------------------------------------------------------------------

def string(value: bytes) -> bytes:
    """A string as a quoted string when it can be one, else as a literal."""
    if len(value) < 1024 and all(0x20 <= c < 0x7F for c in value):
        return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(value)


def literal(value: bytes) -> bytes:
    """A synchronizing literal carrying ``value`` exactly."""
    return b"{%d}\r\n%s" % (len(value), value)


def nstring(value: bytes | None) -> bytes:
    """NIL or a string."""
    return b"NIL" if value is None else string(value)


def flags_list(flags) -> bytes:
    """``(\\Seen \\Flagged)``, system flags first, in a stable order."""
    return b"(" + " ".join(sorted(flags, key=lambda f: (not f.startswith("\\"), f))).encode(
        "latin-1") + b")"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {m.upper(): i + 1 for i, m in enumerate(_MONTHS)}


def format_datetime(when: _dt.datetime) -> bytes:
    """An IMAP date-time: ``"17-Jul-1996 02:44:25 -0700"``."""
    offset = when.utcoffset() or _dt.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (f'"{when.day:2d}-{_MONTHS[when.month - 1]}-{when.year:04d} '
            f'{when.hour:02d}:{when.minute:02d}:{when.second:02d} '
            f'{sign}{minutes // 60:02d}{minutes % 60:02d}"').encode("ascii")


_DATE_TIME = re.compile(rb"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")
_DATE = re.compile(rb"^(\d{1,2})-([A-Za-z]{3})-(\d{4})$")


def parse_datetime(arg) -> _dt.datetime:
    """APPEND's date-time argument."""
    m = _DATE_TIME.match(astring(arg))
    if m is None:
        raise Bad("invalid date-time")
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    month = _MONTH_NUMBER.get(mon.decode().upper())
    offset = _dt.timedelta(hours=int(oh), minutes=int(om))
    try:
        if month is None or offset >= _dt.timedelta(hours=24):
            raise ValueError
        tz = _dt.timezone(-offset if sign == b"-" else offset)
        return _dt.datetime(int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=tz)
    except ValueError:
        raise Bad("invalid date-time") from None


def parse_date(arg) -> _dt.date:
    """A SEARCH date: ``1-Feb-1994``."""
    m = _DATE.match(astring(arg))
    month = _MONTH_NUMBER.get(m.group(2).decode().upper()) if m else None
    try:
        if month is None:
            raise ValueError
        return _dt.date(int(m.group(3)), month, int(m.group(1)))
    except ValueError:
        raise Bad("invalid date") from None
