"""Errors raised by mailgate.tls.

Configuration problems are ``mailgate.config.ConfigError`` with nginx's
wording; connection problems are ``TLSError`` carrying the nginx log level at
which the session should report them.
"""

from __future__ import annotations

from mailgate.config import ConfigError

__all__ = ["ConfigError", "SessionLookup", "TLSClosed", "TLSError", "TLSHandshakeError"]


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


class SessionLookup(Exception):
    """The handshake paused: the client resumes ``session_id``, which the local caches
    do not hold (a context with ``ssl_session_store``).  Not an error: look the session
    up elsewhere, hand it to ``TLSStream.resume_session()`` (None for a miss) and call
    ``do_handshake()`` again."""

    def __init__(self, session_id: bytes):
        self.session_id = session_id
        super().__init__(session_id.hex())
