"""Fixtures for the protocol tests."""

from __future__ import annotations

import pytest
from mailgate.protocol import _impl


@pytest.fixture(params=_impl.available())
def impl(request) -> str:
    """Every test using this runs once per parser implementation."""
    return request.param
