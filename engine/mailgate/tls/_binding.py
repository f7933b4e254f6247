"""The cffi module, initialised once, and nginx's way of describing OpenSSL errors."""

from __future__ import annotations

from mailgate._openssl import ffi, lib

if not lib.mg_init():  # pragma: no cover - only when OpenSSL is out of memory
    raise ImportError("mailgate: OpenSSL ex_data indexes could not be allocated")

__all__ = ["ffi", "lib", "ssl_error_text", "text"]


def text(ptr) -> str:
    """A C string from OpenSSL as str ("" for NULL)."""
    return "" if ptr == ffi.NULL else ffi.string(ptr).decode("utf-8", "replace")


def ssl_error_text() -> str:
    """' (SSL: error:... error:...)' for the queued errors, emptying the queue.

    This is ngx_ssl_error()'s suffix: every queued error in the order it was
    raised, each with its additional data after a colon when OpenSSL gave a
    text.  Empty when the queue is empty.
    """
    parts = []
    data = ffi.new("const char **")
    flags = ffi.new("int *")
    buf = ffi.new("char[]", 256)
    while True:
        code = lib.ERR_peek_error_data(data, flags)
        if code == 0:
            break
        lib.ERR_error_string_n(code, buf, len(buf))
        part = text(buf)
        if data[0] != ffi.NULL and flags[0] & lib.ERR_TXT_STRING:
            extra = text(data[0])
            if extra:
                part += ":" + extra
        parts.append(part)
        lib.ERR_get_error()
    if not parts:
        return ""
    return " (SSL: " + " ".join(parts) + ")"
