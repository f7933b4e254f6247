"""Shared fixtures of the microbenchmarks: the test PKI (tests/support) and paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_PATHS = [str(ROOT)]  # tests.support
if any((ROOT / "engine" / "mailgate").glob("_openssl*.so")):
    # a source tree built in place; else the installed package
    _PATHS.append(str(ROOT / "engine"))
for _path in _PATHS:
    if _path not in sys.path:
        sys.path.insert(0, _path)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The test PKI of tests/support (RSA and ECDSA server certificates)."""
    from tests.support.certs import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))
