"""IMAP FETCH: the data items a client may ask for, and how each is written.

:func:`parse_items` turns FETCH's second argument into :class:`Item` objects;
``Item.render(message, flags)`` gives ``NAME SP value``.  Body sections are cut
from the stored bytes (see ``_mime``) and sent as literals, so ``BODY[]`` is the
stored message byte for byte.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass

from mailgate.demo import _mime
from mailgate.demo._imapwire import (
    Atom,
    Bad,
    astring,
    format_datetime,
    literal,
    nstring,
    parse_atoms,
    string,
)
from mailgate.demo.store import Message

_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SIMPLE = ("ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
           "RFC822.TEXT", "UID", "BODY", "BODYSTRUCTURE")
_SECTION_ITEM = re.compile(rb"(?is)(BODY(?:\.PEEK)?)\[(.*)\](?:<(\d{1,10})\.(\d{1,10})>)?\Z")
_SPECIFIERS = ("", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME")


@dataclass(frozen=True)
class Section:
    """A body section: part numbers, a specifier, and header field names."""

    parts: tuple[int, ...]
    specifier: str          # one of _SPECIFIERS
    fields: tuple[bytes, ...] = ()

    @classmethod
    def parse(cls, text: bytes) -> Section:
        """The section between ``BODY[`` and ``]``; raises :class:`Bad`."""
        head, space, rest = text.partition(b" ")
        names: tuple[bytes, ...] = ()
        if space:
            tokens = parse_atoms(rest)
            if len(tokens) != 1 or not isinstance(tokens[0], list) or not tokens[0]:
                raise Bad("invalid header field list")
            names = tuple(astring(t) for t in tokens[0])
        words = head.split(b".") if head else []
        parts = []
        while words and words[0].isdigit():
            if words[0].startswith(b"0") or len(words[0]) > 9:
                raise Bad("invalid section part number")
            parts.append(int(words.pop(0)))
        specifier = b".".join(words).decode("latin-1").upper()
        if specifier not in _SPECIFIERS or (specifier == "MIME" and not parts):
            raise Bad("invalid section")
        if specifier.startswith("HEADER.FIELDS") != bool(names):
            raise Bad("invalid section")
        return cls(tuple(parts), specifier, names)

    def extract(self, root: _mime.Part) -> bytes | None:
        """The section's bytes, or None when the message has no such part."""
        part = _mime.find_part(root, list(self.parts)) if self.parts else root
        if part is None:
            return None
        if self.specifier == "":
            return root.data if not self.parts else part.text
        if self.specifier == "MIME":
            return part.header
        if self.parts:
            # HEADER and TEXT of a part are those of the message it encapsulates
            part = part.message
            if part is None:
                return None
        if self.specifier == "TEXT":
            return part.text
        if self.specifier == "HEADER":
            return part.header
        return part.header_fields(list(self.fields),
                                  exclude=self.specifier == "HEADER.FIELDS.NOT")


@dataclass(frozen=True)
class Item:
    """One FETCH data item."""

    name: str                       # ENVELOPE, ..., or BODY[] for sections
    section: Section | None = None
    label: bytes = b""              # the name in the reply, e.g. b"BODY[HEADER]<0>"
    partial: tuple[int, int] | None = None
    peek: bool = True

    @property
    def sets_seen(self) -> bool:
        """Whether fetching it sets \\Seen (RFC 3501 6.4.5)."""
        return not self.peek

    def render(self, message: Message, flags: bytes) -> bytes:
        """``NAME SP value`` for one message; ``flags`` is its rendered flag list."""
        name = self.name
        if self.section is not None:
            data = self.section.extract(message.structure)
            if data is None:
                return self.label + b" NIL"
            if self.partial is not None:
                start, length = self.partial
                data = data[start:start + length]
            return self.label + b" " + literal(data)
        if name == "FLAGS":
            return b"FLAGS " + flags
        if name == "UID":
            return b"UID %d" % message.uid
        if name == "RFC822.SIZE":
            return b"RFC822.SIZE %d" % len(message.data)
        if name == "INTERNALDATE":
            return b"INTERNALDATE " + format_datetime(message.internal_date)
        if name == "ENVELOPE":
            return b"ENVELOPE " + envelope(message.structure)
        if name in ("BODY", "BODYSTRUCTURE"):
            return name.encode() + b" " + body_structure(message.structure,
                                                         extended=name == "BODYSTRUCTURE")
        part = message.structure
        data = {"RFC822": message.data, "RFC822.HEADER": part.header,
                "RFC822.TEXT": part.text}[name]
        return name.encode() + b" " + literal(data)


def _item(atom: Atom) -> list[Item]:
    name = atom.upper_str()
    if name in _SIMPLE:
        return [Item(name, peek=name not in ("RFC822", "RFC822.TEXT"))]
    m = _SECTION_ITEM.match(atom)
    if m is None:
        raise Bad(f"unknown FETCH item {atom[:40].decode('latin-1')!r}")
    section = Section.parse(m.group(2))
    partial = None
    label = b"BODY[" + m.group(2) + b"]"
    if m.group(3) is not None:
        partial = (int(m.group(3)), int(m.group(4)))
        if partial[1] == 0:
            raise Bad("a partial fetch needs a non-zero length")
        label += b"<%d>" % partial[0]
    return [Item("BODY[]", section, label, partial, peek=m.group(1).upper() == b"BODY.PEEK")]


def parse_items(arg) -> list[Item]:
    """FETCH's item argument: a macro, one item, or a parenthesized list of items."""
    if isinstance(arg, Atom) and arg.upper_str() in _MACROS:
        return [Item(n) for n in _MACROS[arg.upper_str()]]
    atoms = arg if isinstance(arg, list) else [arg]
    if not atoms:
        raise Bad("empty FETCH item list")
    items = []
    for atom in atoms:
        if not isinstance(atom, Atom):
            raise Bad("invalid FETCH item")
        items.extend(_item(atom))
    return items


# -- ENVELOPE and BODYSTRUCTURE -------------------------------------------------

def _addresses(value: bytes | None) -> bytes:
    if value is None:
        return b"NIL"
    out = []
    # latin-1 maps bytes to code points one to one, so nothing is lost on the way back
    for name, addr in email.utils.getaddresses([value.decode("latin-1")]):
        if not name and not addr:
            continue
        mailbox, at, host = addr.rpartition("@")
        if not at:
            mailbox, host = addr, ""
        out.append(b"(%s NIL %s %s)" % (
            nstring(name.encode("latin-1") or None), string(mailbox.encode("latin-1")),
            string(host.encode("latin-1"))))
    return b"(" + b"".join(out) + b")" if out else b"NIL"


def envelope(part: _mime.Part) -> bytes:
    """The ENVELOPE of a message (date, subject, addresses, ids)."""
    sender = part.get(b"sender")
    reply_to = part.get(b"reply-to")
    from_ = part.get(b"from")
    fields = [
        nstring(part.get(b"date")),
        nstring(part.get(b"subject")),
        _addresses(from_),
        _addresses(sender if sender else from_),
        _addresses(reply_to if reply_to else from_),
        _addresses(part.get(b"to")),
        _addresses(part.get(b"cc")),
        _addresses(part.get(b"bcc")),
        nstring(part.get(b"in-reply-to")),
        nstring(part.get(b"message-id")),
    ]
    return b"(" + b" ".join(fields) + b")"


def _params(params: list[tuple[bytes, bytes]]) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(string(k) + b" " + string(v) for k, v in params) + b")"


def _extension(part: _mime.Part) -> list[bytes]:
    disp = _mime.disposition(part.get(b"content-disposition"))
    disposition = b"NIL" if disp is None else b"(%s %s)" % (string(disp[0]), _params(disp[1]))
    return [disposition, nstring(part.get(b"content-language")),
            nstring(part.get(b"content-location"))]


def body_structure(part: _mime.Part, *, extended: bool) -> bytes:
    """BODY (``extended=False``) or BODYSTRUCTURE of a part, RFC 3501 7.4.2."""
    if part.children:
        out = [b"".join(body_structure(c, extended=extended) for c in part.children),
               string(part.subtype.upper())]
        if extended:
            out.append(_params(part.params))
            out.extend(_extension(part))
        return b"(" + b" ".join(out) + b")"
    text = part.text
    out = [string(part.type.upper()), string(part.subtype.upper()), _params(part.params),
           nstring(part.get(b"content-id")), nstring(part.get(b"content-description")),
           string(part.get(b"content-transfer-encoding") or b"7BIT"), b"%d" % len(text)]
    # a last line without its line end (before a boundary) still counts
    lines = b"%d" % (text.count(b"\n") + (not text.endswith(b"\n") and bool(text)))
    if part.message is not None:
        out += [envelope(part.message), body_structure(part.message, extended=extended), lines]
    elif part.type == b"text":
        out.append(lines)
    if extended:
        out.append(nstring(part.get(b"content-md5")))
        out.extend(_extension(part))
    return b"(" + b" ".join(out) + b")"
