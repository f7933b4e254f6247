"""mailgate bugs this suite found, one text each (used as strict xfail reasons: the
lead fixes the code, the xfail then fails as XPASS and is removed)."""

import pytest


def xfail(reason: str) -> pytest.MarkDecorator:
    """The strict xfail mark for a mailgate bug (for parameters of pair tests, where
    every implementation is mailgate's)."""
    return pytest.mark.xfail(strict=True, reason="mailgate bug: " + reason)
