"""nginx's rendering of a system error, shared by every part that logs one."""

from __future__ import annotations

import os

__all__ = ["os_error_text"]


def os_error_text(exc: BaseException) -> str:
    """``(2: No such file or directory)``: the errno and its text, as nginx prints them."""
    errno = getattr(exc, "errno", None)
    if errno:
        return "(%d: %s)" % (errno, os.strerror(errno))
    return "(%s)" % (getattr(exc, "strerror", None) or exc)
