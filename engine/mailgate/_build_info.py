"""What ``mailgate -V`` reports: OpenSSL versions, Python, event loop, compiled extensions."""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform

__all__ = ["describe", "compiled_parsers"]


def compiled_parsers() -> tuple[list[str], str]:
    """The compiled hot-path modules found, and whether they are in use (and why not)."""
    from mailgate import _speedups
    from mailgate.protocol._impl import PURE_VARIABLE, pure_python_requested

    names = sorted(m.name for m in pkgutil.iter_modules(_speedups.__path__))
    if not names:
        return names, "not built (pure Python in use)"
    if pure_python_requested():
        return names, "disabled by %s=%s (pure Python in use)" % (
            PURE_VARIABLE, os.environ[PURE_VARIABLE])
    for name in names:
        importlib.import_module("mailgate._speedups." + name)
    return names, "in use"


def _event_loop() -> str:
    """The workers' event loop and why (mailgate.process.system.loop_choice)."""
    from mailgate.process.system import LOOP_VARIABLE, WorkerInitError, loop_choice

    try:
        import uvloop
    except ImportError:
        installed = "uvloop not installed"
    else:
        installed = "uvloop %s installed" % uvloop.__version__
    try:
        choice = loop_choice()
    except WorkerInitError as exc:
        return "%s (%s; the binary will not start)" % (installed, exc)
    name = "uvloop %s" % uvloop.__version__ if choice == "uvloop" else "asyncio"
    if os.environ.get(LOOP_VARIABLE):
        return "%s (chosen by %s)" % (name, LOOP_VARIABLE)
    return name if choice == "uvloop" else "asyncio (%s)" % installed


def describe() -> list[str]:
    """Lines of build and runtime details."""
    lines = []
    try:
        from mailgate._openssl import ffi, lib
    except ImportError as exc:
        lines.append("OpenSSL bindings (mailgate._openssl): not available (%s)" % exc)
    else:
        built = ffi.string(lib.MAILGATE_OPENSSL_BUILT_TEXT).decode()
        running = ffi.string(lib.OpenSSL_version(lib.OPENSSL_VERSION)).decode()
        lines.append("built with %s (running with %s)" % (built, running))
        lines.append("OpenSSL bindings: mailgate._openssl (cffi, API mode) in use")
    lines.append("%s %s" % (platform.python_implementation(), platform.python_version()))
    lines.append("event loop: " + _event_loop())
    names, state = compiled_parsers()
    listed = ", ".join("mailgate._speedups." + n for n in names) or "none"
    lines.append("compiled extensions: %s: %s" % (listed, state))
    return lines
