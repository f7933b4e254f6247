"""Coverage-guided fuzzing of every parser of untrusted bytes, with atheris.

``tests/fuzz/targets/NAME.py`` drives one parser through its real entry points;
``corpus/NAME/`` holds its hand-made seeds, ``regressions/NAME/`` the inputs that once
broke it (replayed by ``test_fuzz_smoke.py``, with the fix in the engine).  Run one::

    python -m tests.fuzz machines --seconds 60
    python -m tests.fuzz --all --seconds 5

See ``tests/fuzz/README.md`` for the targets, their contracts and the regressions.
Nothing here may import ``mailgate`` at module level: the runner imports the targets
under atheris's instrumentation, which only covers modules it imports first.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = HERE / "corpus"
REGRESSIONS = HERE / "regressions"

#: every target, in the order ``--all`` runs them
TARGETS: tuple[str, ...] = (
    "machines", "readers", "backend_login", "sasl", "imap_id", "auth_http",
    "proxy_protocol", "dns_answer", "config", "tls",
)


def load(name: str) -> ModuleType:
    """The module of target ``name``."""
    if name not in TARGETS:
        raise ValueError(f"unknown fuzz target {name!r}: one of {', '.join(TARGETS)}")
    return importlib.import_module(f"tests.fuzz.targets.{name}")


def lenient(module: ModuleType) -> Callable[[bytes], None]:
    """The target's ``one_input``, stepping over its ``KNOWN_BUGS``: an exception of the
    type, with the text in its message, raised in the file (the innermost frame's).

    For long runs and property tests only: the regression inputs replay the bugs.
    """
    known = getattr(module, "KNOWN_BUGS", ())
    if not known:
        return module.one_input

    def one_input(data: bytes) -> None:
        try:
            module.one_input(data)
        except tuple(kind for kind, _, _ in known) as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1].filename
            if not any(isinstance(exc, kind) and text in str(exc) and where.endswith(file)
                       for kind, text, file in known):
                raise
    return one_input
