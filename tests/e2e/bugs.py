"""mailgate bugs this suite found, one text each (used as strict xfail reasons: the
lead fixes the code, the xfail then fails as XPASS and is removed)."""

import pytest

LOGGED_IN_ACTION = (
    'the "client logged in" line carries a stale " while sending client greeting line" '
    "(SPEC §2.5: no action on that line): the Log event's action None falls back to "
    "SessionContext.action")

LOGIN_FAILED_BYTES = (
    "a UTF-8 Auth-Status text is logged as mojibake (protocol/_server.py decodes it as "
    "latin-1, the log writes UTF-8): nginx logs the bytes it got")

CLIENT_HOST = (
    "SMTP auth requests lack 'Client-Host: [UNAVAILABLE]' when no resolver is set "
    "(SPEC §6.1/§8.2): ClientSession._auth_facts uses self.client_host, which stays None "
    "without a resolver, while the machine got b'[UNAVAILABLE]'")


def xfail(reason: str) -> pytest.MarkDecorator:
    """The strict xfail mark for a mailgate bug (for parameters of pair tests, where
    every implementation is mailgate's)."""
    return pytest.mark.xfail(strict=True, reason="mailgate bug: " + reason)
