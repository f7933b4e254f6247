"""mailgate bugs this suite found, one text each (used as strict xfail reasons: the
lead fixes the code, the xfail then fails as XPASS and is removed)."""

import pytest

LOGIN_FAILED_BYTES = (
    "a UTF-8 Auth-Status text is logged as mojibake (protocol/_server.py decodes it as "
    "latin-1, the log writes UTF-8): nginx logs the bytes it got")

PEERNAME_NONE = (
    "under uvloop (the binary's loop) a client that resets its connection before the "
    "proxy's connection_made gets get_extra_info('peername') = None, and "
    "ClientSession.connection_made raises TypeError ('NoneType' object is not "
    "subscriptable): a traceback in the log per such connection")


PROXY_HEADER_SPLIT = (
    "an inbound PROXY header not complete in the first read is awaited (until `timeout`); "
    "nginx peeks once and rejects it at once: 'header is too large' for v2, 'broken "
    "header' for v1 (SPEC §11: a length beyond the received bytes gives 'header is too "
    "large'); proxy/proxy_protocol.py parse() returns None for more bytes by design")


LOG_LINE_LENGTH = (
    "a cut error_log line is 2048 characters before its line feed, nginx's 2047 "
    "(NGX_MAX_ERROR_STR 2048 counts the line feed): log.format_line cuts at MAX_LINE "
    "and then appends the newline")


def xfail(reason: str) -> pytest.MarkDecorator:
    """The strict xfail mark for a mailgate bug (for parameters of pair tests, where
    every implementation is mailgate's)."""
    return pytest.mark.xfail(strict=True, reason="mailgate bug: " + reason)
