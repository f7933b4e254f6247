# Base64 as nginx's mail module does it (see protocol/_b64.py for the rules).

cdef const char *_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
cdef signed char _B64_DECODE[256]


cdef void _init_b64_table() noexcept:
    cdef int i
    for i in range(256):
        _B64_DECODE[i] = -1
    for i in range(64):
        _B64_DECODE[<unsigned char> _B64_ALPHABET[i]] = i


_init_b64_table()


def decode_base64(data):
    """Decode ``data`` leniently, exactly as nginx does; ``None`` if it is invalid."""
    cdef Py_buffer view
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        return _decode(<const unsigned char *> view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


cdef object _decode(const unsigned char *data, Py_ssize_t n):
    cdef Py_ssize_t end = 0
    cdef Py_ssize_t i, o
    cdef signed char a, b, c, d
    cdef bytearray out
    cdef unsigned char *dst
    while end < n and data[end] != 0x3D:
        if _B64_DECODE[data[end]] < 0:
            return None
        end += 1
    if end % 4 == 1:
        return None
    out = bytearray(end // 4 * 3 + 2)
    dst = <unsigned char *> <char *> out
    i = 0
    o = 0
    while end - i > 3:
        a = _B64_DECODE[data[i]]
        b = _B64_DECODE[data[i + 1]]
        c = _B64_DECODE[data[i + 2]]
        d = _B64_DECODE[data[i + 3]]
        dst[o] = <unsigned char> ((a << 2) | (b >> 4))
        dst[o + 1] = <unsigned char> ((b << 4) | (c >> 2))
        dst[o + 2] = <unsigned char> ((c << 6) | d)
        o += 3
        i += 4
    if end - i > 1:
        a = _B64_DECODE[data[i]]
        b = _B64_DECODE[data[i + 1]]
        dst[o] = <unsigned char> ((a << 2) | (b >> 4))
        o += 1
    if end - i > 2:
        b = _B64_DECODE[data[i + 1]]
        c = _B64_DECODE[data[i + 2]]
        dst[o] = <unsigned char> ((b << 4) | (c >> 2))
        o += 1
    return (<char *> dst)[:o]


def encode_base64(data):
    """Standard base64 with ``=`` padding (nginx's ngx_encode_base64)."""
    cdef Py_buffer view
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        return _encode(<const unsigned char *> view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


cdef bytes _encode(const unsigned char *data, Py_ssize_t n):
    cdef Py_ssize_t i = 0, o = 0
    cdef unsigned char a, b, c
    cdef bytearray out = bytearray((n + 2) // 3 * 4)
    cdef unsigned char *dst = <unsigned char *> <char *> out
    while n - i > 2:
        a = data[i]
        b = data[i + 1]
        c = data[i + 2]
        dst[o] = _B64_ALPHABET[a >> 2]
        dst[o + 1] = _B64_ALPHABET[((a & 3) << 4) | (b >> 4)]
        dst[o + 2] = _B64_ALPHABET[((b & 0x0F) << 2) | (c >> 6)]
        dst[o + 3] = _B64_ALPHABET[c & 0x3F]
        o += 4
        i += 3
    if n - i:
        a = data[i]
        dst[o] = _B64_ALPHABET[a >> 2]
        if n - i == 1:
            dst[o + 1] = _B64_ALPHABET[(a & 3) << 4]
            dst[o + 2] = 0x3D
        else:
            b = data[i + 1]
            dst[o + 1] = _B64_ALPHABET[((a & 3) << 4) | (b >> 4)]
            dst[o + 2] = _B64_ALPHABET[(b & 0x0F) << 2]
        dst[o + 3] = 0x3D
        o += 4
    return (<char *> dst)[:o]
