"""Errors raised by mailgate.tls.

Configuration problems are ``mailgate.config.ConfigError`` with nginx's
wording; connection problems are ``TLSError`` carrying the nginx log level at
which the session should report them.
"""

from __future__ import annotations

try:
    from mailgate.config import ConfigError
except ImportError:  # the config package has not landed on this branch yet

    class ConfigError(Exception):  # type: ignore[no-redef]
        """A configuration error: nginx's message, optionally with FILE:LINE."""

        def __init__(self, message: str, file: str | None = None, line: int | None = None):
            self.message = message
            self.file = file
            self.line = line
            super().__init__(message)

        def __str__(self) -> str:
            if self.file is None:
                return self.message
            return f"{self.message} in {self.file}:{self.line}"


__all__ = ["ConfigError", "TLSError", "TLSHandshakeError", "TLSClosed"]


class TLSError(Exception):
    """A TLS failure on a connection.

    ``message`` is nginx's text, e.g. ``SSL_read() failed (SSL: error:...)``;
    ``level`` is the nginx error_log level it belongs at ("info" for failures
    a client can cause, "crit" for the rest).
    """

    def __init__(self, message: str, level: str = "crit"):
        self.message = message
        self.level = level
        super().__init__(message)


class TLSHandshakeError(TLSError):
    """The handshake failed: ``SSL_do_handshake() failed (...)`` or
    ``peer closed connection in SSL handshake``."""


class TLSClosed(EOFError):
    """The peer closed the TLS stream: close_notify, or end of input after
    ``feed_eof()``.  Not an error; nginx treats it as end of file."""
