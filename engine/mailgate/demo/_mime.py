"""Where things are inside a stored message: header fields and the MIME tree.

Parsing never copies or rewrites the message; a :class:`Part` records byte offsets
into it, so every section IMAP hands out (``BODY[1.2]``, ``BODY[HEADER]``, …) is an
exact slice of the stored bytes.  Lines end with LF or CRLF alike.  Nothing here
raises on malformed input: a broken Content-Type becomes text/plain, a multipart
without a usable boundary becomes a single part, nesting stops at a fixed depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# multiparts and message/rfc822 nested deeper than this are treated as leaves
MAX_DEPTH = 24

_WSP = b" \t"


@dataclass(eq=False)
class Part:
    """One entity: a message, a body part, or an encapsulated message.

    ``data[start:body]`` is its header (with the blank line that ends it),
    ``data[body:end]`` its body.  ``fields`` are ``(lower-case name, start, end)``
    of each header field, folded lines included.
    """

    data: bytes = field(repr=False)
    start: int
    body: int
    end: int
    fields: list[tuple[bytes, int, int]] = field(repr=False)
    type: bytes = b"text"
    subtype: bytes = b"plain"
    params: list[tuple[bytes, bytes]] = field(default_factory=list)
    children: list[Part] = field(default_factory=list)
    message: Part | None = None       # the encapsulated message of message/rfc822

    @property
    def header(self) -> bytes:
        """The header bytes, blank line included."""
        return self.data[self.start:self.body]

    @property
    def text(self) -> bytes:
        """The body bytes."""
        return self.data[self.body:self.end]

    def get(self, name: bytes) -> bytes | None:
        """The unfolded value of the first field called ``name`` (case-insensitive)."""
        name = name.lower()
        for fname, s, e in self.fields:
            if fname == name:
                return unfold(self.data[s:e])
        return None

    def get_all(self, name: bytes) -> list[bytes]:
        """The unfolded values of every field called ``name``."""
        name = name.lower()
        return [unfold(self.data[s:e]) for fname, s, e in self.fields if fname == name]

    def header_fields(self, names: list[bytes], *, exclude: bool = False) -> bytes:
        """The fields named (or, with ``exclude``, not named) in ``names``, plus the blank line.

        This is ``BODY[HEADER.FIELDS (...)]`` / ``BODY[HEADER.FIELDS.NOT (...)]``.
        """
        wanted = {n.lower() for n in names}
        out = [self.data[s:e] for fname, s, e in self.fields if (fname in wanted) != exclude]
        out.append(b"\r\n")
        return b"".join(out)

    def param(self, name: bytes) -> bytes | None:
        """The Content-Type parameter ``name`` (case-insensitive)."""
        name = name.lower()
        for key, value in self.params:
            if key.lower() == name:
                return value
        return None


def unfold(raw_field: bytes) -> bytes:
    """A field's value: after the colon, line breaks of folding removed, trimmed."""
    colon = raw_field.find(b":")
    value = raw_field[colon + 1:] if colon >= 0 else b""
    return value.replace(b"\r\n", b"").replace(b"\n", b"").strip(_WSP + b"\r")


def _read_header(data: bytes, start: int, end: int) -> tuple[list[tuple[bytes, int, int]], int]:
    """Header fields from ``start``, and where the body begins."""
    fields: list[list] = []
    pos = start
    while pos < end:
        lf = data.find(b"\n", pos, end)
        line_end = end if lf < 0 else lf + 1
        if data[pos] == 0x0A or (data[pos] == 0x0D and pos + 1 < end and data[pos + 1] == 0x0A):
            return [tuple(f) for f in fields], line_end
        if data[pos] in _WSP and fields:
            fields[-1][2] = line_end
        else:
            colon = data.find(b":", pos, line_end)
            name = data[pos:colon].strip(_WSP).lower() if colon >= 0 else b""
            fields.append([name, pos, line_end])
        pos = line_end
    return [tuple(f) for f in fields], end


class _Tokens:
    """RFC 2045 tokens of a structured field: skips comments, yields specials apart."""

    _SPECIALS = b"()<>@,;:\\\"/[]?="

    def __init__(self, value: bytes) -> None:
        self.value = value
        self.pos = 0

    def _skip(self) -> None:
        v = self.value
        while self.pos < len(v):
            ch = v[self.pos]
            if ch in b" \t\r\n":
                self.pos += 1
            elif ch == 0x28:    # "(": a comment, possibly nested
                depth = 0
                while self.pos < len(v):
                    c = v[self.pos]
                    if c == 0x5C:
                        self.pos += 1
                    elif c == 0x28:
                        depth += 1
                    elif c == 0x29:
                        depth -= 1
                        if depth == 0:
                            self.pos += 1
                            break
                    self.pos += 1
            else:
                return

    def next(self) -> bytes | None:
        """The next token, special character or unquoted quoted-string; None at the end."""
        self._skip()
        v = self.value
        if self.pos >= len(v):
            return None
        ch = v[self.pos]
        if ch == 0x22:
            out = bytearray()
            self.pos += 1
            while self.pos < len(v) and v[self.pos] != 0x22:
                if v[self.pos] == 0x5C and self.pos + 1 < len(v):
                    self.pos += 1
                out.append(v[self.pos])
                self.pos += 1
            self.pos += 1
            return bytes(out)
        if ch in self._SPECIALS:
            self.pos += 1
            return bytes([ch])
        start = self.pos
        while self.pos < len(v) and v[self.pos] not in self._SPECIALS and v[self.pos] > 0x20:
            self.pos += 1
        return v[start:self.pos]


def parse_parameters(tokens: _Tokens) -> list[tuple[bytes, bytes]]:
    """``; name=value`` pairs after the main value; stops at the first malformed one."""
    params = []
    while tokens.next() == b";":
        name = tokens.next()
        if not name or name in b";=" or tokens.next() != b"=":
            break
        value = tokens.next()
        if value is None:
            break
        params.append((name, value))
    return params


def content_type(value: bytes | None) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]] | None:
    """``(type, subtype, params)`` of a Content-Type value, types lower-cased; None if invalid."""
    if value is None:
        return None
    tokens = _Tokens(value)
    main = tokens.next()
    if not main or tokens.next() != b"/":
        return None
    sub = tokens.next()
    if not sub or len(sub) == 1 and sub in _Tokens._SPECIALS:
        return None
    return main.lower(), sub.lower(), parse_parameters(tokens)


def disposition(value: bytes | None) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """``(disposition, params)`` of a Content-Disposition value; None if absent or invalid."""
    if value is None:
        return None
    tokens = _Tokens(value)
    kind = tokens.next()
    if not kind or len(kind) == 1 and kind in _Tokens._SPECIALS:
        return None
    return kind, parse_parameters(tokens)


def _delimiters(data: bytes, body: int, end: int, boundary: bytes) -> list[tuple[int, int, bool]]:
    """Each boundary line: (end of the previous part, start of the next, is-close)."""
    delim = b"--" + boundary
    found = []
    i = data.find(delim, body, end)
    while i >= 0:
        if i == body or data[i - 1] == 0x0A:
            after = i + len(delim)
            close = data.startswith(b"--", after) and after + 2 <= end
            lf = data.find(b"\n", after, end)
            line_end = end if lf < 0 else lf + 1
            if not data[after + (2 if close else 0):line_end].strip(b" \t\r\n"):
                # the line break before a delimiter belongs to the delimiter
                prev_end = i
                if i > body:
                    prev_end -= 1
                    if prev_end > body and data[prev_end - 1] == 0x0D:
                        prev_end -= 1
                found.append((prev_end, line_end, close))
                if close:
                    break
                i = data.find(delim, line_end, end)
                continue
        i = data.find(delim, i + 1, end)
    return found


def _parse(data: bytes, start: int, end: int, depth: int, default: tuple[bytes, bytes]) -> Part:
    fields, body = _read_header(data, start, end)
    part = Part(data, start, body, end, fields, *default)
    ctype = content_type(part.get(b"content-type"))
    if ctype is not None:
        part.type, part.subtype, part.params = ctype
    elif default == (b"text", b"plain"):
        part.params = [(b"charset", b"us-ascii")]
    if depth >= MAX_DEPTH:
        if part.type in (b"multipart", b"message"):
            part.type, part.subtype, part.params = b"text", b"plain", []
        return part
    if part.type == b"multipart":
        boundary = part.param(b"boundary")
        delims = _delimiters(data, body, end, boundary) if boundary else []
        child_default = (b"message", b"rfc822") if part.subtype == b"digest" else (b"text", b"plain")
        for (_, first, close), following in zip(delims, delims[1:] + [(end, end, True)]):
            if close:
                break
            part.children.append(_parse(data, first, following[0], depth + 1, child_default))
        if not part.children:
            part.type, part.subtype = b"text", b"plain"
    elif (part.type, part.subtype) == (b"message", b"rfc822"):
        part.message = _parse(data, body, end, depth + 1, (b"text", b"plain"))
    return part


def parse(data: bytes) -> Part:
    """The structure of a whole message."""
    return _parse(data, 0, len(data), 0, (b"text", b"plain"))


def find_part(root: Part, numbers: list[int]) -> Part | None:
    """The part a section's part numbers (``[1, 2]`` for ``1.2``) name, or None.

    A non-multipart message has one part, ``1``, itself; the parts of a
    message/rfc822 part are those of the message it encapsulates (RFC 3501 6.4.5).
    """
    node = root
    at_message = True     # node is a message (root or encapsulated), not a body part
    for n in numbers:
        if not at_message and node.message is not None:
            node, at_message = node.message, True
        if node.children:
            if not 1 <= n <= len(node.children):
                return None
            node, at_message = node.children[n - 1], False
        elif at_message and n == 1:
            at_message = False
        else:
            return None
    return node
