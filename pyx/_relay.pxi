
# What an unallocated buffer's ``data`` points at (its filled part is always empty).
cdef unsigned char _relay_unallocated[1]
_RELAY_EMPTY = memoryview(bytearray())


cdef class RelayBuffer:
    """A fixed-capacity buffer with a write side and a read side."""
    cdef bytearray _storage
    cdef object _view
    cdef unsigned char *data
    cdef public Py_ssize_t pos
    cdef public Py_ssize_t last
    cdef Py_ssize_t end

    def __cinit__(self, Py_ssize_t capacity):
        if capacity <= 0:
            raise ValueError("buffer capacity must be positive")
        # allocated on first use: a session waiting for input holds no buffer memory
        self._storage = bytearray()
        self._view = _RELAY_EMPTY
        self.data = _relay_unallocated
        self.end = capacity
        self.pos = 0
        self.last = 0

    cdef int _allocate(self) except -1:
        self._storage = bytearray(self.end)
        self._view = memoryview(self._storage)
        self.data = <unsigned char *> <char *> self._storage
        return 0

    @property
    def capacity(self):
        """Total size of the buffer in bytes."""
        return self.end

    def __len__(self):
        return self.last - self.pos

    @property
    def free(self):
        """Bytes that can still be written behind ``last``."""
        return self.end - self.last

    @property
    def full(self):
        """True when no byte can be appended (nginx: ``last == end``)."""
        return self.last == self.end

    cpdef object get_buffer(self, Py_ssize_t sizehint=-1):
        """A writable view of the free space (empty when the buffer is full)."""
        if self.data == _relay_unallocated:
            self._allocate()
        return self._view[self.last:]

    cpdef void buffer_updated(self, Py_ssize_t nbytes) except *:
        """Commit ``nbytes`` written into the view returned by get_buffer()."""
        if nbytes < 0 or nbytes > self.end - self.last:
            raise ValueError("committed more bytes than the buffer has room for")
        self.last += nbytes

    cpdef Py_ssize_t write(self, object data) except -1:
        """Copy as much of ``data`` as fits; return the number of bytes taken."""
        cdef Py_buffer view
        cdef Py_ssize_t n
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        n = view.len
        if n > self.end - self.last:
            n = self.end - self.last
        if n > 0:
            if self.data == _relay_unallocated:
                self._allocate()
            memcpy(self.data + self.last, view.buf, n)
            self.last += n
        PyBuffer_Release(&view)
        return n

    cpdef object readable(self):
        """A view of the filled part ``[pos:last]``; valid until the next write."""
        return self._view[self.pos:self.last]

    cpdef void consume(self, Py_ssize_t nbytes) except *:
        """Mark ``nbytes`` as used; reset to the start once everything is used."""
        if nbytes < 0 or nbytes > self.last - self.pos:
            raise ValueError("consumed more bytes than the buffer holds")
        self.pos += nbytes
        if self.pos == self.last:
            self.pos = 0
            self.last = 0

    cpdef void reset(self):
        """Drop every byte (nginx sets ``pos = last = start``)."""
        self.pos = 0
        self.last = 0

    cpdef void reset_if_drained(self):
        """Go back to the start only if every byte has been used."""
        if self.pos == self.last:
            self.pos = 0
            self.last = 0

    cpdef bytes pending(self):
        """A copy of the filled part ``[pos:last]``."""
        return (<char *> self.data)[self.pos:self.last]

    cpdef bytes contents(self):
        """A copy of everything from the start of the buffer to ``last``."""
        return (<char *> self.data)[:self.last]

    def grow(self, Py_ssize_t capacity):
        """Raise the capacity to ``capacity`` bytes (never lower it), keeping every
        byte and mark: a command that needs more room than the configured buffer."""
        cdef bytearray storage
        if capacity <= self.end:
            return
        if self.data != _relay_unallocated:
            storage = bytearray(capacity)
            storage[:self.last] = self._storage[:self.last]
            self._storage = storage
            self._view = memoryview(storage)
            self.data = <unsigned char *> <char *> storage
        self.end = capacity

    def replace(self, data):
        """Discard everything and store ``data`` (which must fit) from the start."""
        if len(data) > self.end:
            raise ValueError("data does not fit in the buffer")
        self.pos = 0
        self.last = 0
        self.write(data)

    def fill_from(self, recv_into):
        """Call ``recv_into(view)`` on the free space and commit what it returns.

        ``recv_into`` is e.g. ``socket.recv_into`` or a TLS object's ``recv_into``.
        Returns its result (0 on EOF).  Nothing is called when the buffer is full.
        """
        if self.last == self.end:
            return 0
        if self.data == _relay_unallocated:
            self._allocate()
        n = recv_into(self._view[self.last:])
        if n:
            self.buffer_updated(n)
        return n
