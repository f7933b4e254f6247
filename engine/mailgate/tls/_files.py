"""Files read while a context is built: ssl_password_file and ticket keys.

Both follow nginx's reading rules and report problems with nginx's wording,
located at the directive that named the file.
"""

from __future__ import annotations

import os

from mailgate.tls.errors import ConfigError

Where = tuple[str, int] | None  # (file, line) of the directive, when known

# nginx reads the password file through a buffer of this size; a line that
# fills it is refused.
PASSWORD_BUFFER_SIZE = 4096


def _os_error(call: str, path: str, exc: OSError, where: Where) -> ConfigError:
    file, line = where or (None, None)
    return ConfigError(f'{call} "{path}" failed ({exc.errno}: {os.strerror(exc.errno)})', file, line)


def _error(message: str, where: Where) -> ConfigError:
    file, line = where or (None, None)
    return ConfigError(message, file, line)


def read_password_file(path: str, where: Where = None) -> list[bytearray]:
    """The passwords of an ``ssl_password_file``, in order.

    Blocking reads until end of file, so a named pipe works.  Lines end with
    LF, one trailing CR is dropped, empty lines are skipped; with no password
    at all a single empty one is used.  A line of 4096 bytes or more is an
    error.  The caller zeroes the returned buffers when done with them.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_error("open()", path, exc, where) from None

    passwords: list[bytearray] = []
    pending = bytearray()
    try:
        while True:
            try:
                chunk = os.read(fd, PASSWORD_BUFFER_SIZE - len(pending))
            except OSError as exc:
                raise _os_error("read()", path, exc, where) from None
            pending += chunk
            if not chunk and pending:
                pending += b"\n"  # the last line need not end with LF
            while True:
                end = pending.find(b"\n")
                if end < 0:
                    break
                line = pending[:end]
                if line.endswith(b"\r"):
                    line = line[:-1]
                if line:
                    passwords.append(line)
                del pending[: end + 1]
            if len(pending) >= PASSWORD_BUFFER_SIZE:
                raise _error(f'too long line in "{path}"', where)
            if not chunk:
                break
    except BaseException:
        for password in passwords:
            password[:] = b"\0" * len(password)
        raise
    finally:
        pending[:] = b"\0" * len(pending)
        os.close(fd)

    return passwords or [bytearray()]


def read_ticket_key(path: str, where: Where = None) -> bytearray:
    """The content of an ``ssl_session_ticket_key`` file: 48 or 80 bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_error("open()", path, exc, where) from None
    try:
        try:
            size = os.fstat(fd).st_size
        except OSError as exc:  # pragma: no cover - fstat on an open fd
            raise _os_error("fstat()", path, exc, where) from None
        if size not in (48, 80):
            raise _error(f'"{path}" must be 48 or 80 bytes', where)
        try:
            data = bytearray(os.pread(fd, size, 0))
        except OSError as exc:
            raise _os_error("pread()", path, exc, where) from None
        if len(data) != size:  # pragma: no cover - the file shrank meanwhile
            raise _error(f'pread() "{path}" returned only {len(data)} bytes instead of {size}', where)
        return data
    finally:
        os.close(fd)
