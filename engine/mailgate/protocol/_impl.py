"""Choosing between the compiled wire primitives and their pure-Python references.

The compiled module (``mailgate._speedups.wire``, built from ``pyx/``) is the
default.  ``MAILGATE_PURE=1`` in the environment, or ``set_implementation("python")``,
selects the pure-Python reference; a machine may also be given an implementation
explicitly, which is how the tests run every transcript on both.
"""

from __future__ import annotations

import os
from types import ModuleType, SimpleNamespace

from mailgate.protocol import _b64, _reader, _relay

PYTHON = "python"
COMPILED = "compiled"

# what an implementation provides: the compiled module has them all, the pure-Python
# references are spread over three modules
_PRIMITIVES = ("RelayBuffer", "ImapReader", "Pop3Reader", "SmtpReader",
               "decode_base64", "encode_base64")


def _implementation(name: str, *modules: ModuleType) -> SimpleNamespace:
    """The namespace ``name`` of the primitives, each from the first of ``modules`` that
    defines it."""
    return SimpleNamespace(name=name, **{
        primitive: next(getattr(m, primitive) for m in modules if hasattr(m, primitive))
        for primitive in _PRIMITIVES})


_python = _implementation(PYTHON, _relay, _reader, _b64)

try:
    from mailgate._speedups import wire as _wire
except ImportError:  # not built (e.g. running from a source tree without build_ext)
    _compiled = None
else:
    _compiled = _implementation(COMPILED, _wire)


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
