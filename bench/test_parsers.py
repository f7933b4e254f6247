"""Microbenchmarks of the wire primitives: compiled (pyx/) vs pure-Python reference.

Run:  PYTHONPATH=engine python -m pytest bench/test_parsers.py --benchmark-only

Each group runs the same workload on both implementations; the figures and the
compiled/pure ratios are in bench/RESULTS.md ("Parsers").
"""

from __future__ import annotations

import base64

import pytest
from mailgate.protocol import _codes, _impl

assert _codes.AGAIN == 0

IMPLS = _impl.available()
BUFFER = 4096


def _fill(line: bytes) -> bytes:
    """As many copies of ``line`` as fit in one 4 KiB command buffer."""
    return line * (BUFFER // len(line))


def _parse_all(impl: str, kind: str, data: bytes) -> int:
    """Parse a full buffer of pipelined commands; count the parser's results.

    The workloads hold no SASL exchange, so the loop only calls parse() until it
    needs more bytes (AGAIN is 0): what is timed is the reader, not this loop.
    """
    im = _impl.get(impl)
    buf = im.RelayBuffer(BUFFER)
    reader = getattr(im, kind)(buf)
    buf.write(data)
    parse = reader.parse
    count = 0
    while parse():
        count += 1
    return count


WORKLOADS = {
    # line framing: short pipelined lines, CRLF and bare LF
    "framing": ("Pop3Reader", _fill(b"NOOP\r\nNOOP\nCAPA\r\n")),
    # IMAP tokenizing with literals (sync and non-sync), quoted strings, escapes
    "imap_literals": ("ImapReader", _fill(
        b'a001 LOGIN {16}\r\nuser@example.com {12+}\r\nsecret pass!\r\n'
        b'a002 LOGIN "user@example.com" "pa\\"ss word"\r\n')),
    "smtp": ("SmtpReader", _fill(
        b"EHLO client.example.org\r\nMAIL FROM:<sender@example.com> SIZE=1024 BODY=8BITMIME\r\n"
        b"RCPT TO:<rcpt@example.net>\r\nRSET\r\n")),
    "pop3": ("Pop3Reader", _fill(b"USER someone@example.com\r\nPASS secret pass  \r\n")),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_parse(benchmark, workload, impl):
    kind, data = WORKLOADS[workload]
    benchmark.group = workload
    benchmark.extra_info.update(bytes=len(data))
    count = benchmark(_parse_all, impl, kind, data)
    assert count > 50


SASL_PLAIN = base64.b64encode(b"\0user@example.com\0correct horse battery staple")
LONG_B64 = base64.b64encode(bytes(range(256)) * 12)        # ~4 KiB, a full line


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("size", ["sasl", "4k"])
def test_base64_decode(benchmark, impl, size):
    data = SASL_PLAIN if size == "sasl" else LONG_B64
    decode = _impl.get(impl).decode_base64
    benchmark.group = f"base64_{size}"
    benchmark.extra_info.update(bytes=len(data))
    assert benchmark(decode, data) == base64.b64decode(data)


def _relay(impl: str, chunks: list[bytes]) -> int:
    """socket -> buffer -> peer, in 1 KiB reads and writes through memoryviews."""
    buf = _impl.get(impl).RelayBuffer(16384)
    moved = 0
    for chunk in chunks:
        view = buf.get_buffer()
        n = len(chunk)
        view[:n] = chunk
        buf.buffer_updated(n)
        out = buf.readable()
        moved += len(out)
        buf.consume(len(out))
    return moved


@pytest.mark.parametrize("impl", IMPLS)
def test_relay_buffer(benchmark, impl):
    chunks = [bytes(1024)] * 64
    benchmark.group = "relay_buffer"
    benchmark.extra_info.update(bytes=64 * 1024)
    assert benchmark(_relay, impl, chunks) == 64 * 1024
