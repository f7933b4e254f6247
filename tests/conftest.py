"""Registers the shared test infrastructure (tests/support) as a pytest plugin."""

import sys
from pathlib import Path

# `tests.support` must import even when pytest is started as `pytest` (no cwd on sys.path).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

pytest_plugins = ["tests.support.fixtures"]
