"""The fuzz targets in CI: a short atheris run of each, every seed and regression input.

The smoke runs every target for a few seconds (two at a time) through the runner, in
subprocesses, so that a crash, a hang or a broken harness fails here with libFuzzer's
output.  The seeds and the regression inputs are replayed in this process, each under
a time limit; an input of ``KNOWN_BUGS`` must still fail (strict xfail), so that the
fix of the engine removes it from the list.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz import CORPUS, REGRESSIONS, ROOT, TARGETS, load

SMOKE_SECONDS = 3
INPUT_SECONDS = 10

#: regression inputs of bugs reported but not fixed yet (the files are on the list of
#: another change in progress); each line: what fails and the proposed fix
KNOWN_BUGS: dict[str, str] = {}

needs_atheris = pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                                   reason="atheris is not installed")


def _files(root: Path) -> list[tuple[str, Path]]:
    return [(target.name, path) for target in sorted(root.iterdir()) if target.is_dir()
            for path in sorted(target.iterdir()) if path.is_file()]


def _param(target: str, path: Path):
    key = f"{target}/{path.name}"
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[key])] if key in KNOWN_BUGS else []
    return pytest.param(target, path, id=key, marks=marks)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the main thread if the block runs longer (a hang)."""
    def expired(signum, frame):
        raise TimeoutError(f"the input ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every target fuzzed for SMOKE_SECONDS, two at a time; the runner's summary rows."""
    work = tmp_path_factory.mktemp("fuzz")
    command = [sys.executable, "-m", "tests.fuzz", "--all", "--seconds", str(SMOKE_SECONDS),
               "--jobs", "2", "--work", str(work)]
    subprocess.run(command, cwd=ROOT, capture_output=True, timeout=60 * len(TARGETS), check=False)
    return {row["target"]: row for row in json.loads((work / "summary.json").read_text())}


@needs_atheris
@pytest.mark.parametrize("target", TARGETS)
def test_smoke(smoke, target):
    row = smoke[target]
    log = Path(row["log"]).read_text(errors="replace")
    assert row["status"] == "ok", log[-6000:]
    # every seed ran, then mutations for the rest of the time (few on a loaded machine)
    assert row["runs"].isdigit() and int(row["runs"]) >= len(list((CORPUS / target).iterdir())), (
        log[-3000:])


def test_every_target_has_a_module_and_seeds():
    for target in TARGETS:
        assert callable(load(target).one_input)
        assert any((CORPUS / target).iterdir()), f"no seeds for {target}"
    assert {path.name for path in CORPUS.iterdir()} == set(TARGETS)
    regressions = {target for target, _ in _files(REGRESSIONS)}
    assert regressions <= set(TARGETS)
    assert set(KNOWN_BUGS) <= {f"{target}/{path.name}" for target, path in _files(REGRESSIONS)}


@pytest.mark.parametrize("target, path", [_param(*item) for item in _files(REGRESSIONS)])
def test_regression_input(target, path):
    """An input that once failed, replayed: it passes since the fix (of the engine, or of
    the target where its contract was wrong; see tests/fuzz/README.md)."""
    with time_limit(INPUT_SECONDS):
        load(target).one_input(path.read_bytes())


@pytest.mark.parametrize("target, path", [_param(*item) for item in _files(CORPUS)])
def test_seed_input(target, path):
    with time_limit(INPUT_SECONDS):
        load(target).one_input(path.read_bytes())
