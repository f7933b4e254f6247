"""Fixtures of the observability tests (issue 16): the ``mailgate`` binary's instance and
the demo backend come from the process tests."""

from __future__ import annotations

from tests.process.conftest import backend, mailgate_instance  # noqa: F401 - fixtures used here
