"""The input format the structured fuzz targets share.

A structured target reads its input as a stream of *steps*: one header byte whose low
three bits are the step's operation (0-7, its meaning is the target's) and whose high
five bits give the length of the chunk of bytes that follows it.  With ``LINEAR`` sizes
the five bits are the length itself (0-31 bytes, enough to cut client commands into
arbitrary pieces); with ``WIDE`` sizes the top eight codes stand for 32 ... 4096 bytes
(whole TLS records).  A chunk cut short by the end of the input is simply shorter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

LINEAR: tuple[int, ...] = tuple(range(32))
WIDE: tuple[int, ...] = tuple(range(24)) + (32, 64, 128, 256, 512, 1024, 2048, 4096)


def steps(data: bytes, start: int = 0, sizes: tuple[int, ...] = LINEAR
          ) -> Iterator[tuple[int, bytes]]:
    """The ``(operation, chunk)`` steps of ``data`` from offset ``start``."""
    pos = start
    # each step consumes at least its header byte: at most len(data) iterations
    while pos < len(data):
        head = data[pos]
        size = sizes[head >> 3]
        yield head & 7, data[pos + 1:pos + 1 + size]
        pos += 1 + size


def encode(items: Iterable[tuple[int, bytes]], sizes: tuple[int, ...] = LINEAR) -> bytes:
    """The bytes :func:`steps` reads back as ``items`` (for seeds and property tests).

    A chunk longer than one step can carry is cut into steps of the same operation,
    the largest sizes first; an empty chunk is one empty step.
    """
    out = bytearray()
    by_size = sorted(((size, code) for code, size in enumerate(sizes)), reverse=True)
    for op, chunk in items:
        rest = memoryview(chunk)
        while True:
            size, code = next((s, c) for s, c in by_size if s <= len(rest))
            out.append(code << 3 | op)
            out += rest[:size]
            rest = rest[size:]
            if not rest:
                break
    return bytes(out)

