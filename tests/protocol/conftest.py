"""Fixtures for the protocol tests."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from mailgate.protocol import _impl  # noqa: E402


@pytest.fixture(params=_impl.available())
def impl(request) -> str:
    """Every test using this runs once per parser implementation."""
    return request.param
