"""The ``pid`` file: written once every socket is bound, removed on exit."""

from __future__ import annotations

import os

from mailgate.config import ConfigError
from mailgate.oserror import os_error_text

__all__ = ["create_pidfile", "delete_pidfile"]


def create_pidfile(path: str, pid: int) -> None:
    """Write ``PID\\n`` to ``path`` (truncating it); ConfigError with nginx's message."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError('open() "%s" failed %s' % (path, os_error_text(exc))) from None
    try:
        os.write(fd, b"%d\n" % pid)
    except OSError as exc:
        raise ConfigError('write() to "%s" failed %s' % (path, os_error_text(exc))) from None
    finally:
        os.close(fd)


def delete_pidfile(path: str, log) -> None:
    """Remove the pid file; a failure is logged at alert, as nginx does."""
    try:
        os.unlink(path)
    except OSError as exc:
        log.log("alert", 'unlink() "%s" failed %s' % (path, os_error_text(exc)))
