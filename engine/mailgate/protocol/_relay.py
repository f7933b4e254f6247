"""Fixed-size byte buffer: the pure-Python reference of ``pyx/_relay.pxi``.

The buffer has nginx's ``ngx_buf_t`` shape: ``start <= pos <= last <= end``.  A
producer writes into the free space ``[last:end]`` and commits what it wrote; a
consumer reads the filled part ``[pos:last]`` and consumes what it used.  When the
consumer has taken everything, both marks go back to the start, as nginx does in
its relay loop; nothing is ever moved inside the buffer (no compaction).

It composes with asyncio's ``BufferedProtocol`` (``get_buffer`` / ``buffer_updated``)
and with a TLS stream's ``recv_into(memoryview) -> int`` (``fill_from``), so bytes go
socket or TLS -> buffer -> transport without intermediate copies.

The storage is allocated on first use (``get_buffer``, ``write``, ``fill_from``): a
session that waits for input it has not received yet holds no buffer memory.
"""

from __future__ import annotations

_EMPTY = memoryview(bytearray())


class RelayBuffer:
    """A fixed-capacity buffer with a write side and a read side."""

    __slots__ = ("_storage", "_view", "_capacity", "pos", "last")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("buffer capacity must be positive")
        self._storage = bytearray()
        self._view = _EMPTY
        self._capacity = capacity
        self.pos = 0
        self.last = 0

    def _allocate(self) -> None:
        self._storage = bytearray(self._capacity)
        self._view = memoryview(self._storage)

    @property
    def capacity(self) -> int:
        """Total size of the buffer in bytes."""
        return self._capacity

    def __len__(self) -> int:
        return self.last - self.pos

    @property
    def free(self) -> int:
        """Bytes that can still be written behind ``last``."""
        return self._capacity - self.last

    @property
    def full(self) -> bool:
        """True when no byte can be appended (nginx: ``last == end``)."""
        return self.last == self._capacity

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """A writable view of the free space (empty when the buffer is full)."""
        if self._view is _EMPTY:
            self._allocate()
        return self._view[self.last:]

    def buffer_updated(self, nbytes: int) -> None:
        """Commit ``nbytes`` written into the view returned by :meth:`get_buffer`."""
        if nbytes < 0 or nbytes > self._capacity - self.last:
            raise ValueError("committed more bytes than the buffer has room for")
        self.last += nbytes

    def write(self, data) -> int:
        """Copy as much of ``data`` as fits; return the number of bytes taken."""
        n = min(len(data), self._capacity - self.last)
        if n and self._view is _EMPTY:
            self._allocate()
        self._storage[self.last:self.last + n] = memoryview(data)[:n]
        self.last += n
        return n

    def readable(self) -> memoryview:
        """A view of the filled part ``[pos:last]``; valid until the next write."""
        return self._view[self.pos:self.last]

    def consume(self, nbytes: int) -> None:
        """Mark ``nbytes`` as used; reset to the start once everything is used."""
        if nbytes < 0 or nbytes > self.last - self.pos:
            raise ValueError("consumed more bytes than the buffer holds")
        self.pos += nbytes
        if self.pos == self.last:
            self.pos = self.last = 0

    def reset(self) -> None:
        """Drop every byte (nginx sets ``pos = last = start``)."""
        self.pos = self.last = 0

    def reset_if_drained(self) -> None:
        """Go back to the start only if every byte has been used."""
        if self.pos == self.last:
            self.pos = self.last = 0

    def pending(self) -> bytes:
        """A copy of the filled part ``[pos:last]``."""
        return bytes(self._view[self.pos:self.last])

    def contents(self) -> bytes:
        """A copy of everything from the start of the buffer to ``last``."""
        return bytes(self._view[:self.last])

    def grow(self, capacity: int) -> None:
        """Raise the capacity to ``capacity`` bytes (never lower it), keeping every
        byte and mark: a command that needs more room than the configured buffer."""
        if capacity <= self._capacity:
            return
        if self._view is not _EMPTY:
            storage = bytearray(capacity)
            storage[:self.last] = self._storage[:self.last]
            self._storage = storage
            self._view = memoryview(storage)
        self._capacity = capacity

    def replace(self, data) -> None:
        """Discard everything and store ``data`` (which must fit) from the start."""
        if len(data) > self._capacity:
            raise ValueError("data does not fit in the buffer")
        self.pos = 0
        self.last = 0
        self.write(data)

    def fill_from(self, recv_into) -> int:
        """Call ``recv_into(view)`` on the free space and commit what it returns.

        ``recv_into`` is e.g. ``socket.recv_into`` or a TLS object's ``recv_into``.
        Returns its result (0 on EOF).  Nothing is called when the buffer is full.
        """
        if self.last == self._capacity:
            return 0
        if self._view is _EMPTY:
            self._allocate()
        n = recv_into(self._view[self.last:])
        if n:
            self.buffer_updated(n)
        return n
