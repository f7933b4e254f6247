"""cffi builder for mailgate._openssl, an out-of-line API-mode binding to OpenSSL 3.

The declarations handed to cffi live in include/cdef/, one file per OpenSSL area
(as pyca/cryptography groups its _cffi_src); the C helpers that must not run
Python per call (ticket-key callback, session-cache hooks, the shared-memory
session cache) live in include/csrc/ and are compiled into the same module.
"""

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CDEF_DIR = os.path.join(HERE, "cdef")
CSRC_DIR = os.path.join(HERE, "csrc")


def _read(path):
    with open(path, encoding="ascii") as f:
        return f.read()


def _cdef_text():
    """All declarations, in file-name order (files are prefixed to fix the order)."""
    names = sorted(n for n in os.listdir(CDEF_DIR) if n.endswith(".h"))
    return "\n".join("/* %s */\n%s" % (n, _read(os.path.join(CDEF_DIR, n))) for n in names)


def _c_sources():
    return sorted(
        os.path.relpath(os.path.join(CSRC_DIR, n), os.path.dirname(HERE))
        for n in os.listdir(CSRC_DIR)
        if n.endswith(".c")
    )


ffibuilder = FFI()
ffibuilder.cdef(_cdef_text())
ffibuilder.set_source(
    "mailgate._openssl",
    '#include "mailgate_openssl.h"\n',
    sources=_c_sources(),
    include_dirs=[CSRC_DIR],
    libraries=["ssl", "crypto"],
    extra_compile_args=["-Wno-deprecated-declarations"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
