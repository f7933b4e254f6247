"""The wire primitives: relay buffer, command readers, base64 — on both implementations,
plus differential tests (compiled vs pure Python) on fixed, generated and malformed input.
"""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.protocol import _codes, _impl
from mailgate.protocol import _reader as pyreader

from tests.protocol.factory import server_config

BOTH = _impl.available()
needs_compiled = pytest.mark.skipif(_impl.COMPILED not in BOTH,
                                    reason="compiled speedups not built")


# -- relay buffer ---------------------------------------------------------------

def test_relay_buffer_cycle(impl):
    b = _impl.get(impl).RelayBuffer(8)
    assert (b.capacity, len(b), b.free, b.full) == (8, 0, 8, False)
    view = b.get_buffer()
    view[:5] = b"hello"
    b.buffer_updated(5)
    assert bytes(b.readable()) == b"hello" and b.pending() == b"hello"
    assert b.write(b"world") == 3 and b.full
    assert len(b.get_buffer()) == 0
    b.consume(4)
    assert (b.pos, b.last, b.pending(), b.contents()) == (4, 8, b"owor", b"hellowor")
    assert b.free == 0      # no compaction
    b.consume(4)
    assert (b.pos, b.last) == (0, 0)
    with pytest.raises(ValueError):
        b.consume(1)
    with pytest.raises(ValueError):
        b.buffer_updated(9)
    with pytest.raises(ValueError):
        _impl.get(impl).RelayBuffer(0)
    b.replace(b"235")
    assert b.pending() == b"235"
    b.reset()
    assert len(b) == 0



def test_relay_buffer_storage_is_allocated_on_first_use(impl):
    import tracemalloc

    cls = _impl.get(impl).RelayBuffer
    capacity = 1 << 20
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        buffers = [cls(capacity) for _ in range(50)]
        idle = tracemalloc.get_traced_memory()[0] - base
        # an unused buffer answers like an empty one, without storage
        first = buffers[0]
        assert (len(first), first.free, first.full, first.pending(), first.contents()) == (
            0, capacity, False, b"", b"")
        assert first.write(b"") == 0
        assert tracemalloc.get_traced_memory()[0] - base < capacity // 10
        assert idle < capacity // 10  # fifty buffers, not fifty megabytes
        first.get_buffer()[:3] = b"abc"
        first.buffer_updated(3)
        assert tracemalloc.get_traced_memory()[0] - base >= capacity
        assert first.pending() == b"abc"
        second = buffers[1]
        assert second.fill_from(lambda view: 0) == 0
        assert tracemalloc.get_traced_memory()[0] - base >= 2 * capacity
    finally:
        tracemalloc.stop()


def test_relay_buffer_composes_with_recv_into(impl):
    src = bytearray(b"0123456789")

    def recv_into(view):
        n = min(len(view), len(src), 4)
        view[:n] = src[:n]
        del src[:n]
        return n

    sent = bytearray()
    b = _impl.get(impl).RelayBuffer(6)
    while src or len(b):
        b.fill_from(recv_into)
        n = min(len(b), 3)  # what a reader takes, as the relay consumes it
        sent += b.readable()[:n]
        b.consume(n)
    assert bytes(sent) == b"0123456789"
    assert b.fill_from(lambda view: 0) == 0


def test_relay_buffer_grows_keeping_bytes_and_marks(impl):
    b = _impl.get(impl).RelayBuffer(4)
    b.grow(16)                      # before any storage: only the capacity changes
    assert b.capacity == 16 and len(b) == 0
    b = _impl.get(impl).RelayBuffer(4)
    assert b.write(b"abcdef") == 4 and b.full
    b.consume(1)
    b.grow(8)
    assert (b.capacity, b.pos, b.last, b.full) == (8, 1, 4, False)
    assert b.contents() == b"abcd" and b.pending() == b"bcd"
    assert b.write(b"efghij") == 4 and b.pending() == b"bcdefgh"
    view = b.get_buffer()
    assert len(view) == 0
    b.grow(4)                       # never smaller
    assert b.capacity == 8


# -- base64 -----------------------------------------------------------------------

@pytest.mark.parametrize("data, expected", [
    (b"", b""), (b"=", b""), (b"Zm9v", b"foo"), (b"Zm9v=junk!", b"foo"), (b"Zm9vYg", b"foob"),
    (b"Zm9vYmE", b"fooba"), (b"Zm9vYmE=", b"fooba"), (b"Zg", b"f"), (b"Zh", b"f"),
    (b"*", None), (b"Z", None), (b"Zm9vY", None), (b"Zm 9v", None), (b"Zm9v\r", None),
    (b"AGdvb2QAc2VjcmV0IHBhc3M=", b"\0good\0secret pass"),
])
def test_decode_base64(impl, data, expected):
    assert _impl.get(impl).decode_base64(data) == expected


def test_encode_base64(impl):
    enc = _impl.get(impl).encode_base64
    for n in range(20):
        data = bytes(range(200, 200 + n))
        assert enc(data) == base64.b64encode(data)


@given(st.binary(max_size=300))
def test_base64_round_trip_and_differential(data):
    encoded = base64.b64encode(data)
    for name in BOTH:
        im = _impl.get(name)
        assert im.encode_base64(data) == encoded
        assert im.decode_base64(encoded) == data
        assert im.decode_base64(encoded.rstrip(b"=")) == data


@given(st.binary(max_size=64) | st.text("AZaz09+/=*- \r\n", max_size=64).map(str.encode))
def test_base64_decode_differential(data):
    results = {name: _impl.get(name).decode_base64(data) for name in BOTH}
    assert len(set(results.values())) == 1


# -- readers ------------------------------------------------------------------------

def run_reader(impl: str, kind: str, chunks: list[bytes], capacity: int = 256) -> list:
    """Feed ``chunks`` like a session would; record every observable result."""
    im = _impl.get(impl)
    buf = im.RelayBuffer(capacity)
    reader = getattr(im, kind)(buf)
    trace = []
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while pending:
            n = buf.write(bytes(pending))
            del pending[:n]
            while True:
                rc = reader.parse()
                item = [rc, buf.pos, buf.last, reader.state]
                if rc in (_codes.OK, _codes.INVALID, _codes.LITERAL):
                    item += [reader.command if rc == _codes.OK else None, list(reader.args)]
                    if kind == "ImapReader":
                        item += [reader.tag, reader.literal_rejected]
                    elif rc == _codes.OK:
                        item.append(reader.command_text())
                trace.append(item)
                if rc == _codes.AGAIN:
                    if buf.full:
                        trace.append("too long")
                        buf.reset()
                        reader.reset_state()
                    break
                if rc != _codes.LITERAL and not reader.in_progress:
                    buf.reset_if_drained()
                    if kind == "ImapReader":
                        reader.tag = b""
            if not n:
                break
    return trace


READERS = ["ImapReader", "Pop3Reader", "SmtpReader"]

FIXED = [
    b"a1 LOGIN {4}\r\ngood {11+}\r\nsecret pass\r\n",
    b'a1 LOGIN "u\\"s" "p\\\\w"\r\na2 AUTHENTICATE PLAIN\r\nAGdvb2QAc2VjcmV0\r\n',
    b"a1 LOGIN u {0}\r\n\r\n",
    b'a1 LOGIN "u p\r\na2 NOOP\r\n+}\r\nx FOO {3+}\r\n',
    b"a1 NOOP\r\r\n" + b"A" * 33 + b" NOOP\r\n a NOOP\n",
    b"USER  good man \r\nPASS secret  \r\nAUTH LOGIN\r\nZ29vZA==\r\nc2VjcmV0\r\n",
    b"EHLO x\r\nMAIL FROM:<a@b>  SIZE=10\r\nRCPT TO:<c@d>\r\nSTARTTLS\r\nAUTH PLAIN\r\n=\r\n",
    b"MAIL " + b"a " * 12 + b"\r\nDATA\r\nVRFY\r\nHELP\r\nstls\r\nCAPA\nQUIT\r\x00\n",
    b"a1 LOGIN {99999999999999999999}\r\n{1}\r\na2 login {1}\r\nx\xff\r\n",
    bytes(range(256)) * 2,
]


@needs_compiled
@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize("data", FIXED)
def test_readers_differential_fixed(kind, data):
    for size in (1, 3, len(data)):
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        for capacity in (16, 64, 4096):
            assert run_reader("python", kind, chunks, capacity) == \
                run_reader("compiled", kind, chunks, capacity)


TOKENS = [b"a1 ", b"A", b" ", b"  ", b"\r\n", b"\n", b"\r", b"\"", b"\\", b"{", b"}", b"+",
          b"{3}\r\n", b"{0}\r\n", b"{2+}\r\n", b"LOGIN ", b"AUTHENTICATE ", b"NOOP", b"USER ",
          b"PASS ", b"AUTH ", b"MAIL ", b"EHLO ", b"STARTTLS", b"CAPA", b"x", b"\x00",
          b"\xff", b"12", b"-._", b"PLAIN", b"Zm9v"]


@needs_compiled
@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS) | st.binary(max_size=6), max_size=40),
       st.integers(1, 9), st.sampled_from([8, 32, 128]), st.sampled_from(READERS))
def test_readers_differential_generated(tokens, size, capacity, kind):
    data = b"".join(tokens)
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    assert run_reader("python", kind, chunks, capacity) == \
        run_reader("compiled", kind, chunks, capacity)


@pytest.mark.parametrize("kind", READERS)
def test_reader_state_is_bounded(impl, kind):
    rng = random.Random(5)
    im = _impl.get(impl)
    buf = im.RelayBuffer(64)
    reader = getattr(im, kind)(buf)
    limit = 11 if kind == "SmtpReader" else 3
    for _ in range(3000):
        buf.write(bytes(rng.choice(b"a {}+\"\\\r\n1") for _ in range(rng.randint(1, 20))))
        rc = reader.parse()
        assert rc in (_codes.AGAIN, _codes.OK, _codes.INVALID, _codes.LITERAL)
        assert len(reader.args) <= limit
        assert buf.capacity == 64
        if rc == _codes.AGAIN and buf.full:
            buf.reset()
            reader.reset_state()
        elif rc != _codes.AGAIN:
            buf.reset_if_drained()


@needs_compiled
def test_compiled_constants_match_reference():
    # the compiled reader must produce the same command codes and results
    for kind, words in (("ImapReader", pyreader._IMAP_WORDS), ("Pop3Reader", pyreader._POP3_WORDS),
                        ("SmtpReader", pyreader._SMTP_WORDS)):
        for word, code in words.items():
            line = (b"t " if kind == "ImapReader" else b"") + word.lower() + b"\r\n"
            trace = run_reader("compiled", kind, [line])
            assert trace[0][0] == _codes.OK and trace[0][4] == code, (kind, word)


def test_implementation_selection(monkeypatch):
    import mailgate.protocol as protocol
    before = protocol.IMPLEMENTATION
    try:
        protocol.set_implementation("python")
        assert protocol.IMPLEMENTATION == "python"
        assert type(protocol.RelayBuffer(4)).__module__ == "mailgate.protocol._relay"
        assert protocol.ImapServer(
            server_config()).impl.name == "python"
        with pytest.raises(ValueError):
            protocol.set_implementation("fast")
    finally:
        protocol.set_implementation(before)
    monkeypatch.setenv("MAILGATE_PURE", "1")
    assert _impl._initial().name == "python"
    monkeypatch.setenv("MAILGATE_PURE", "0")
    assert _impl._initial().name == BOTH[0]


@pytest.mark.parametrize("value, pure", [("", False), ("0", False), ("1", True), ("yes", True)])
def test_one_reading_of_mailgate_pure(monkeypatch, value, pure):
    # issue 12, item 9: "mailgate -V" said the compiled extensions were in use for any
    # value but "1", while the machines ran pure Python for any value but "" and "0"
    from mailgate import _build_info

    monkeypatch.setenv("MAILGATE_PURE", value)
    assert (_impl._initial().name == "python") is pure
    _, state = _build_info.compiled_parsers()
    assert ("pure Python in use" in state) is pure
