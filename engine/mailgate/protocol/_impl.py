"""Choosing between the compiled wire primitives and their pure-Python references.

The compiled module (``mailgate._speedups.wire``, built from ``pyx/``) is the
default.  ``MAILGATE_PURE=1`` in the environment, or ``set_implementation("python")``,
selects the pure-Python reference; a machine may also be given an implementation
explicitly, which is how the tests run every transcript on both.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from mailgate.protocol import _b64, _reader, _relay

PYTHON = "python"
COMPILED = "compiled"

_python = SimpleNamespace(
    name=PYTHON,
    RelayBuffer=_relay.RelayBuffer,
    ImapReader=_reader.ImapReader,
    Pop3Reader=_reader.Pop3Reader,
    SmtpReader=_reader.SmtpReader,
    decode_base64=_b64.decode_base64,
    encode_base64=_b64.encode_base64,
)

try:
    from mailgate._speedups import wire as _wire
except ImportError:  # not built (e.g. running from a source tree without build_ext)
    _compiled = None
else:
    _compiled = SimpleNamespace(
        name=COMPILED,
        RelayBuffer=_wire.RelayBuffer,
        ImapReader=_wire.ImapReader,
        Pop3Reader=_wire.Pop3Reader,
        SmtpReader=_wire.SmtpReader,
        decode_base64=_wire.decode_base64,
        encode_base64=_wire.encode_base64,
    )


def available() -> tuple[str, ...]:
    """The implementations that can be used in this process."""
    return (COMPILED, PYTHON) if _compiled is not None else (PYTHON,)


def get(name: str | None = None) -> SimpleNamespace:
    """The namespace of primitives for ``name`` (default: the active one)."""
    if name is None:
        return _active
    if name == PYTHON:
        return _python
    if name == COMPILED:
        if _compiled is None:
            raise RuntimeError(
                "the compiled protocol speedups are not built "
                "(run: python setup.py build_ext --inplace)")
        return _compiled
    raise ValueError(f"unknown protocol implementation {name!r}: "
                     f"use {COMPILED!r} or {PYTHON!r}")


def set_active(name: str) -> None:
    """Make ``name`` the implementation used by machines created from now on."""
    global _active
    _active = get(name)


PURE_VARIABLE = "MAILGATE_PURE"


def pure_python_requested() -> bool:
    """Whether ``MAILGATE_PURE`` asks for the pure-Python primitives: any value but
    empty and ``0`` does (the one reading, for the machines and for ``mailgate -V``)."""
    return os.environ.get(PURE_VARIABLE, "") not in ("", "0")


def _initial() -> SimpleNamespace:
    if pure_python_requested() or _compiled is None:
        return _python
    return _compiled


_active = _initial()
