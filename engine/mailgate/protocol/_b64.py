"""Base64 as nginx's mail module does it: the pure-Python reference of ``pyx/_b64.pxi``.

Decoding is nginx's ``ngx_decode_base64``: only the characters before the first
``=`` count, they must all be in the standard alphabet, padding is optional, and a
remainder of one character (length mod 4 == 1) is an error.  Bits left over in the
last group are ignored.  ``*`` (a SASL cancel) is therefore invalid, while ``=`` and
the empty string decode to the empty string.
"""

from __future__ import annotations

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# byte -> 6-bit value, or -1 for a byte outside the alphabet
_DECODE = [-1] * 256
for _i, _c in enumerate(_ALPHABET):
    _DECODE[_c] = _i
del _i, _c


def decode_base64(data: bytes) -> bytes | None:
    """Decode ``data`` leniently, exactly as nginx does; ``None`` if it is invalid."""
    end = data.find(b"=")
    if end < 0:
        end = len(data)
    values = []
    for i in range(end):
        v = _DECODE[data[i]]
        if v < 0:
            return None
        values.append(v)
    if end % 4 == 1:
        return None
    out = bytearray()
    i = 0
    while end - i > 3:
        a, b, c, d = values[i], values[i + 1], values[i + 2], values[i + 3]
        out.append(((a << 2) | (b >> 4)) & 0xFF)
        out.append(((b << 4) | (c >> 2)) & 0xFF)
        out.append(((c << 6) | d) & 0xFF)
        i += 4
    rest = end - i
    if rest > 1:
        a, b = values[i], values[i + 1]
        out.append(((a << 2) | (b >> 4)) & 0xFF)
    if rest > 2:
        b, c = values[i + 1], values[i + 2]
        out.append(((b << 4) | (c >> 2)) & 0xFF)
    return bytes(out)


def encode_base64(data: bytes) -> bytes:
    """Standard base64 with ``=`` padding (nginx's ``ngx_encode_base64``)."""
    out = bytearray()
    n = len(data)
    i = 0
    while n - i > 2:
        a, b, c = data[i], data[i + 1], data[i + 2]
        out.append(_ALPHABET[a >> 2])
        out.append(_ALPHABET[((a & 3) << 4) | (b >> 4)])
        out.append(_ALPHABET[((b & 0x0F) << 2) | (c >> 6)])
        out.append(_ALPHABET[c & 0x3F])
        i += 3
    rest = n - i
    if rest:
        a = data[i]
        out.append(_ALPHABET[a >> 2])
        if rest == 1:
            out.append(_ALPHABET[(a & 3) << 4])
            out.append(0x3D)
        else:
            b = data[i + 1]
            out.append(_ALPHABET[((a & 3) << 4) | (b >> 4)])
            out.append(_ALPHABET[(b & 0x0F) << 2])
        out.append(0x3D)
    return bytes(out)
