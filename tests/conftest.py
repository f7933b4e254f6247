"""Registers the shared test infrastructure (tests/support) as a pytest plugin.

``tests`` is a package imported from the repository root, which pytest puts on its path
(``pythonpath`` in pyproject.toml): every test imports ``tests.support...`` and its
siblings as ``tests.<package>.<module>``.
"""

pytest_plugins = ["tests.support.fixtures"]
