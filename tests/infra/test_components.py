"""require(): a missing component skips a test, and fails it under MAILGATE_REQUIRE_ALL=1."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.components import COMPONENTS, REQUIRE_ALL, missing
from tests.support.proxy import REPO_ROOT

# A pytest run of its own, with a component that is never installed: as a call in the
# test, and as a mark.
TESTS = '''
import pytest

from tests.support import components
from tests.support.components import Component, require

components.COMPONENTS["fake-tool"] = Component(("/nonexistent/fake-tool",), "fake-tool-pkg")


def test_call():
    require("fake-tool")


@pytest.mark.requires("fake-tool")
def test_mark():
    pass
'''


def _run(tmp_path, require_all: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_fake.py").write_text(TESTS)
    env = dict(os.environ)
    env.pop(REQUIRE_ALL, None)
    if require_all is not None:
        env[REQUIRE_ALL] = require_all
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.fixtures", "-p", "no:cacheprovider",
         "-rA", str(tmp_path / "test_fake.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_a_missing_component_skips(tmp_path):
    done = _run(tmp_path, require_all=None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 skipped" in done.stdout, done.stdout
    assert "fake-tool is not installed (/nonexistent/fake-tool is missing)" in done.stdout


def test_a_missing_component_fails_when_all_are_required(tmp_path):
    done = _run(tmp_path, require_all="1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "skipped" not in done.stdout, done.stdout
    hint = ("fake-tool is not installed (/nonexistent/fake-tool is missing): install the "
            "Debian packages fake-tool-pkg")
    assert done.stdout.count(hint) >= 2, done.stdout  # the call and the mark
    assert f"{REQUIRE_ALL}=1: every component must be installed" in done.stdout


def test_every_component_names_its_packages():
    for name, component in COMPONENTS.items():
        assert component.needs and component.packages, name
        why = missing(name)
        assert why is None or why.startswith(f"{name} is not installed ("), why
