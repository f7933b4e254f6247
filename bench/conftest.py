"""Shared fixtures of the microbenchmarks: the test PKI (tests/support)."""

from __future__ import annotations

import pytest

from tests.support.certs import make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The test PKI of tests/support (RSA and ECDSA server certificates)."""
    return make_pki(tmp_path_factory.mktemp("pki"))
