"""Target ``imap_id``: RFC 2971 ID parameter lists, mailgate's own (nginx has no ID).

A client's ``ID`` argument (the rest of its line, as the IMAP reader hands it over) goes
through ``parse_id``; the fields kept go back out in the proxy's own ID to the backend
(``backend_id``) and the server's fields in the answer (``format_id``).

Input: any bytes, the raw parameter list.

Contract: ``parse_id`` returns None or a tuple of (name, value-or-None) pairs within
RFC 2971's limits (at most 30 pairs, names of at most 30 bytes, values of at most 1024);
``format_id`` of them parses back to the same pairs; the backend's ID line is one line
that parses back to the client's fields (without those a backend trusts from its proxy)
followed by the proxy's four address fields, within the same limits.
"""

from __future__ import annotations

from mailgate.protocol import Endpoints
from mailgate.protocol.imap import (
    BACKEND_ID_TAG,
    ID_MAX_FIELD,
    ID_MAX_PAIRS,
    ID_MAX_VALUE,
    backend_id,
    format_id,
    parse_id,
)

ENDPOINTS = Endpoints("2001:db8::7", 50123, "127.0.0.1", 143)
OURS = (b"x-originating-ip", b"x-originating-port", b"x-connected-ip", b"x-connected-port")

DICTIONARY = (b"NIL", b"(", b")", b'"', b"\\", b" ", b'"name"', b'"version"', b'""',
              b'"x-originating-ip"', b'"x-forward-foo"', b"{5}", b"{5+}", b"\r\n")


def one_input(data: bytes) -> None:
    """Parse ``data`` as a client's ID list and send it on as the proxy would."""
    fields = parse_id(data)
    if fields is None:
        return
    assert len(fields) <= ID_MAX_PAIRS, fields
    for name, value in fields:
        assert isinstance(name, bytes) and len(name) <= ID_MAX_FIELD, name
        assert value is None or (isinstance(value, bytes) and len(value) <= ID_MAX_VALUE)
    assert parse_id(format_id(fields)) == fields, (data, fields)
    line = backend_id(fields, ENDPOINTS)
    assert line.startswith(BACKEND_ID_TAG + b"ID ") and line.endswith(b"\r\n")
    assert b"\r" not in line[:-2] and b"\n" not in line[:-2], line
    sent = parse_id(line[len(BACKEND_ID_TAG) + 3:-2])
    assert sent is not None and len(sent) <= ID_MAX_PAIRS, line
    assert tuple(name for name, _ in sent[-4:]) == OURS, sent
    kept = [f for f in fields if not f[0].lower().startswith(
        (b"x-originating-", b"x-connected-", b"x-forward-", b"x-proxy-ttl", b"x-session-"))]
    assert list(sent[:-4]) == kept[:ID_MAX_PAIRS - 4], (fields, sent)
