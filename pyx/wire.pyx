"""Compiled wire primitives: the relay buffer, the command readers, SASL base64.

Each part has a pure-Python reference in ``mailgate.protocol`` (``_relay.py``,
``_reader.py``, ``_b64.py``) that defines its behaviour; the differential tests run
both on the same inputs.  Which one the protocol machines use is chosen in
``mailgate.protocol._impl``.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.string cimport memchr, memcpy

include "_relay.pxi"
include "_reader.pxi"
include "_b64.pxi"
