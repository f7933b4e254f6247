"""Property and fuzz tests: any input gives actions, never an exception, bounded state."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from fuzz_machines import drive
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.protocol import _impl

HERE = os.path.dirname(__file__)

INTERESTING = [b"a1 ", b"LOGIN ", b"AUTHENTICATE ", b"PLAIN", b"LOGIN", b"CRAM-MD5 ",
               b"EXTERNAL", b"STARTTLS\r\n", b"STLS\r\n", b"USER u\r\n", b"PASS p\r\n",
               b"APOP u d\r\n", b"AUTH ", b"EHLO x\r\n", b"MAIL FROM:<a>\r\n", b"RCPT TO:<b>\r\n",
               b"{3}\r\n", b"{2+}\r\n", b"\"", b"\\", b"\r\n", b"\n", b"\r", b"=", b"*",
               b"AGdvb2QAcHc=\r\n", b"+OK\r\n", b"* OK\r\n", b"+ \r\n", b"a1 OK\r\n",
               b"220 x\r\n", b"250 x\r\n", b"250-x\r\n", b"235 x\r\n", b"x" * 40]


def encode(ops: list[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for op, chunk in ops:
        chunk = chunk[:31]
        out.append((len(chunk) << 3) | op)
        out += chunk
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 2),
       st.lists(st.tuples(st.integers(0, 7),
                          st.lists(st.sampled_from(INTERESTING) | st.binary(max_size=8),
                                   max_size=4).map(b"".join)), max_size=30))
def test_machines_take_any_input(selector, which, ops):
    data = bytes([selector, which]) + encode(ops)
    for name in _impl.available():
        drive(data, name)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600))
def test_machines_take_raw_bytes(data):
    for name in _impl.available():
        drive(data, name)


def test_large_input_keeps_memory_bounded(impl):
    from factory import server_config

    from mailgate.protocol import ImapServer
    m = ImapServer(server_config("imap", imap_client_buffer=256), implementation=impl)
    m.start()
    sent = 0
    chunk = b"a1 NOOP\r\n" * 20 + b"b1 LOGIN {10}\r\n"
    while m.want_read and sent < 1_000_000:
        view = m.get_buffer()
        n = min(len(view), len(chunk))
        view[:n] = chunk[:n]
        m.buffer_updated(n)
        sent += n
        assert len(m.buffer) <= 256
    assert m.buffer.capacity == 256


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")
def test_atheris_smoke():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(HERE, "..", "..", "engine"), HERE]))
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "fuzz_machines.py"), "-runs=3000", "-seed=1"],
        env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
