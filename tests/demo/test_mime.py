"""Where sections are in a message: header fields, MIME parts, nesting, malformed input."""

from __future__ import annotations

from mailgate.demo import _mime

from tests.demo.helpers import BARE_LF, MULTIPART, NESTED, SIMPLE


def test_header_fields_and_folding():
    data = b"Subject: a\r\n  folded\r\nX-Empty:\r\nno colon line\r\nTo: x\r\n\r\nbody"
    part = _mime.parse(data)
    assert part.get(b"SUBJECT") == b"a  folded"
    assert part.get(b"x-empty") == b""
    assert part.get(b"missing") is None
    assert part.header_fields([b"subject"]) == b"Subject: a\r\n  folded\r\n\r\n"
    assert part.header_fields([b"subject", b"x-empty"], exclude=True) == (
        b"no colon line\r\nTo: x\r\n\r\n")
    assert part.text == b"body"
    assert (part.type, part.subtype, part.params) == (b"text", b"plain",
                                                      [(b"charset", b"us-ascii")])


def test_bare_lf_and_headerless_messages():
    part = _mime.parse(BARE_LF)
    assert part.header == b"Subject: unix\n\n" and part.text == b"line one\n.dotted\nlast\n"
    part = _mime.parse(b"just a header line")
    assert part.header == b"just a header line" and part.text == b""
    part = _mime.parse(b"\r\nbody only")
    assert part.header == b"\r\n" and part.text == b"body only"
    assert _mime.parse(b"").text == b""


def test_multipart_offsets_are_exact():
    root = _mime.parse(MULTIPART)
    assert [c.text for c in root.children] == [b"see attachment", b"AAECAw=="]
    assert root.param(b"BOUNDARY") == b"XYZ"
    assert _mime.find_part(root, [2]).get(b"content-transfer-encoding") == b"base64"
    assert _mime.find_part(root, [3]) is None
    assert _mime.find_part(root, [1, 1]) is None
    simple = _mime.parse(SIMPLE)
    assert _mime.find_part(simple, [1]) is simple
    assert _mime.find_part(simple, [1, 1]) is None and _mime.find_part(simple, [2]) is None


def test_nested_message_rfc822():
    root = _mime.parse(NESTED)
    inner = _mime.find_part(root, [2])
    assert inner.message.get(b"subject") == b"inner"
    assert _mime.find_part(root, [2, 1]).text == b"plain"
    assert _mime.find_part(root, [2, 2]).subtype == b"html"
    assert _mime.find_part(root, [2, 2]).text == b"<b>x</b>"
    assert _mime.find_part(root, [2, 3]) is None
    digest = _mime.parse(b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n"
                         b"Subject: in digest\r\n\r\nx\r\n--d--\r\n")
    (child,) = digest.children
    assert (child.type, child.subtype) == (b"message", b"rfc822")     # the digest default
    assert child.message.get(b"subject") == b"in digest"


def test_malformed_structures_degrade_to_text():
    for ctype in (b"multipart/mixed", b"multipart/mixed; boundary=nothere", b"garbage",
                  b"text/", b"/plain", b"multipart/mixed; boundary"):
        part = _mime.parse(b"Content-Type: " + ctype + b"\r\n\r\nhello\r\n")
        assert not part.children and part.type == b"text", ctype
    assert _mime.content_type(b'Text/HTML (comment) ; Charset="utf-8" ; x') == (
        b"text", b"html", [(b"Charset", b"utf-8")])
    assert _mime.disposition(b"attachment; filename=\"a \\\"b\\\".txt\"") == (
        b"attachment", [(b"filename", b'a "b".txt')])
    assert _mime.disposition(b";") is None


def test_deep_nesting_stops():
    data = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
                    for i in range(200)) + b"\r\ninnermost\r\n"
    part = _mime.parse(data)
    depth = 0
    while part.children:
        part = part.children[0]
        depth += 1
    assert depth == _mime.MAX_DEPTH
