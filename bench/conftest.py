"""Shared fixtures of the microbenchmarks: the test PKI (tests/support) and paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT / "engine"), str(ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The test PKI of tests/support (RSA and ECDSA server certificates)."""
    from tests.support.certs import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))
