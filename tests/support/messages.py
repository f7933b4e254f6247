"""Test messages with CRLF line ends, so the stored bytes are the bytes IMAP serves.

Dovecot serves a Maildir file byte for byte when its lines end in CRLF (it would turn
bare LFs into CRLF on the fly), so every message here uses CRLF.
"""

from __future__ import annotations

import hashlib

__all__ = ["DOT_MESSAGE", "EIGHT_BIT_MESSAGE", "big_message", "make_message"]


def make_message(
    subject: str,
    body: str | bytes = "Hello.\r\n",
    *,
    sender: str = "sender@example.test",
    to: str = "rcpt@example.test",
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """An RFC 5322 message; ``body`` is used as given (give it CRLF line ends).

    Example: ``make_message("hello", "line 1\\r\\n.line with dot\\r\\n")``
    """
    headers = [("From", sender), ("To", to), ("Subject", subject), *extra_headers]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode()
    return head + b"\r\n" + (body if isinstance(body, bytes) else body.encode())


def big_message(size: int = 10 * 1024 * 1024, *, subject: str = "bulk") -> bytes:
    """A message of exactly ``size`` bytes: deterministic 76-character lines.

    The lines are short enough for poplib/imaplib's line limits and differ from each
    other, so a reordered or duplicated chunk in a relay is caught by comparison.
    """
    head = make_message(subject, b"")
    if size < len(head) + 2:
        raise ValueError(f"size must be at least {len(head) + 2}")
    lines = []
    total = len(head)
    counter = 0
    while total + 76 <= size:
        digest = hashlib.sha256(counter.to_bytes(8, "big")).hexdigest()
        lines.append(f"{counter:010d} {digest}"[:74].encode() + b"\r\n")
        total += 76
        counter += 1
    rest = size - total
    if rest == 1:
        # One byte cannot hold a line: widen the previous line by one instead.
        lines[-1] = lines[-1][:-2] + b"-\r\n"
    elif rest:
        lines.append(b"z" * (rest - 2) + b"\r\n")
    body = b"".join(lines)
    message = head + body
    assert len(message) == size
    return message


DOT_MESSAGE = make_message(
    "dots",
    ".leading dot\r\n..two dots\r\n.\r\nnot the end\r\n. space after dot\r\n",
)
"""Lines that POP3 and SMTP must dot-stuff; one is a lone dot."""

EIGHT_BIT_MESSAGE = make_message(
    "8bit",
    "Grüße aus Köln — ünïcödé body\r\n".encode(),
    extra_headers=(
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
    ),
)
