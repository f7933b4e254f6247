"""IMAP SEARCH: the search keys of RFC 3501 6.4.4, compiled to a predicate.

``compile_keys(args)`` returns ``match(message, seq, ctx) -> bool`` where ``ctx``
is a :class:`Context` (the largest sequence number and UID, for ``*``, and the
session's \\Recent UIDs).  Text keys match case-insensitively on the raw bytes
(no charset decoding: US-ASCII and UTF-8 searches both work on UTF-8 text).
"""

from __future__ import annotations

import datetime as _dt
import email.utils
from collections.abc import Callable
from dataclasses import dataclass

from mailgate.demo._imapwire import Atom, Bad, SequenceSet, astring, flag_list, number, parse_date
from mailgate.demo.store import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN, Message


@dataclass(frozen=True)
class Context:
    """What a search key needs besides the message."""

    largest_seq: int
    largest_uid: int
    recent: frozenset[int]


Predicate = Callable[[Message, int, Context], bool]

_FLAG_KEYS = {
    "ANSWERED": (ANSWERED, True), "UNANSWERED": (ANSWERED, False),
    "DELETED": (DELETED, True), "UNDELETED": (DELETED, False),
    "DRAFT": (DRAFT, True), "UNDRAFT": (DRAFT, False),
    "FLAGGED": (FLAGGED, True), "UNFLAGGED": (FLAGGED, False),
    "SEEN": (SEEN, True), "UNSEEN": (SEEN, False),
}
_HEADER_KEYS = {"BCC": b"bcc", "CC": b"cc", "FROM": b"from", "SUBJECT": b"subject", "TO": b"to"}
_DATE_KEYS = ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE")
CHARSETS = (b"US-ASCII", b"UTF-8")


def _has_flag(flag: str, present: bool) -> Predicate:
    return lambda m, seq, ctx: (flag in m.flags) == present


def _contains(haystack: bytes, needle: bytes) -> bool:
    return needle.lower() in haystack.lower()


def _header(field: bytes, needle: bytes) -> Predicate:
    return lambda m, seq, ctx: any(_contains(v, needle) for v in m.structure.get_all(field))


def _sent_date(m: Message) -> _dt.date | None:
    value = m.structure.get(b"date")
    parsed = email.utils.parsedate_tz(value.decode("latin-1")) if value else None
    if parsed is None:
        return None
    try:
        return _dt.date(*parsed[:3])
    except ValueError:
        return None


def _date_key(name: str, day: _dt.date) -> Predicate:
    sent = name.startswith("SENT")
    test = {"BEFORE": lambda d: d < day, "ON": lambda d: d == day,
            "SINCE": lambda d: d >= day}[name.removeprefix("SENT")]

    def match(m: Message, seq: int, ctx: Context) -> bool:
        d = _sent_date(m) if sent else m.internal_date.date()
        return d is not None and test(d)
    return match


class _Parser:
    def __init__(self, tokens: list) -> None:
        self.tokens = tokens
        self.i = 0

    def _next(self, what: str):
        if self.i >= len(self.tokens):
            raise Bad(f"missing {what} in SEARCH")
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def all(self) -> Predicate:
        keys = []
        while self.i < len(self.tokens):
            keys.append(self.key())
        if not keys:
            raise Bad("empty SEARCH criteria")
        if len(keys) == 1:
            return keys[0]
        return lambda m, seq, ctx: all(k(m, seq, ctx) for k in keys)

    def key(self) -> Predicate:
        tok = self._next("search key")
        if isinstance(tok, list):
            return _Parser(tok).all()
        if not isinstance(tok, Atom):
            raise Bad("invalid SEARCH key")
        name = tok.upper_str()
        if name in _FLAG_KEYS:
            return _has_flag(*_FLAG_KEYS[name])
        if name == "ALL":
            return lambda m, seq, ctx: True
        if name == "NEW":
            return lambda m, seq, ctx: m.uid in ctx.recent and SEEN not in m.flags
        if name == "OLD":
            return lambda m, seq, ctx: m.uid not in ctx.recent
        if name == "RECENT":
            return lambda m, seq, ctx: m.uid in ctx.recent
        if name in ("KEYWORD", "UNKEYWORD"):
            flag = flag_list(self._next("keyword"))[0]
            return _has_flag(flag, name == "KEYWORD")
        if name == "NOT":
            inner = self.key()
            return lambda m, seq, ctx: not inner(m, seq, ctx)
        if name == "OR":
            a, b = self.key(), self.key()
            return lambda m, seq, ctx: a(m, seq, ctx) or b(m, seq, ctx)
        if name in _HEADER_KEYS:
            return _header(_HEADER_KEYS[name], astring(self._next("string")))
        if name == "HEADER":
            field = astring(self._next("header field")).lower()
            return _header(field, astring(self._next("string")))
        if name == "BODY":
            needle = astring(self._next("string"))
            return lambda m, seq, ctx: _contains(m.structure.text, needle)
        if name == "TEXT":
            needle = astring(self._next("string"))
            return lambda m, seq, ctx: _contains(m.data, needle)
        if name in ("LARGER", "SMALLER"):
            size = number(self._next("size"), "size")
            if name == "LARGER":
                return lambda m, seq, ctx: len(m.data) > size
            return lambda m, seq, ctx: len(m.data) < size
        if name in _DATE_KEYS:
            return _date_key(name, parse_date(self._next("date")))
        if name == "UID":
            uids = SequenceSet.parse(self._next("UID set"))
            return lambda m, seq, ctx: uids.contains(m.uid, ctx.largest_uid)
        if name[:1].isdigit() or name[:1] == "*":
            seqs = SequenceSet.parse(tok)
            return lambda m, seq, ctx: seqs.contains(seq, ctx.largest_seq)
        raise Bad(f"unknown SEARCH key {name[:40]!r}")


def compile_keys(args: list) -> Predicate:
    """The predicate for SEARCH's arguments (without a CHARSET prefix)."""
    return _Parser(args).all()
