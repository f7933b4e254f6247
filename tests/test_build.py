"""The build: clear instructions when the toolchain is missing; the extensions in use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_missing_compiler_stops_the_build_with_what_to_install(tmp_path):
    env = dict(os.environ, CC="/nonexistent/cc")
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-temp", str(tmp_path / "t"),
         "--build-lib", str(tmp_path / "l")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "mailgate: cannot build the compiled extensions" in proc.stderr
    assert "apt-get install build-essential python3-dev libssl-dev" in proc.stderr


def test_openssl_bindings_are_compiled_against_openssl_3():
    from mailgate._openssl import ffi, lib

    built = ffi.string(lib.MAILGATE_OPENSSL_BUILT_TEXT).decode()
    assert built.startswith("OpenSSL 3.") and lib.MAILGATE_OPENSSL_BUILT_NUMBER >= 0x30000000
    assert lib.OpenSSL_version_num() >= 0x30000000


def test_the_microbenchmarks_still_run():
    """bench/ drives the engine's internals (sessions on memory transports, the TLS pump):
    each benchmark runs once here, timing off, so that a change inside cannot leave
    them broken until the next benchmark run (a regression: the session's timer wheel)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "bench", "--benchmark-disable", "-q", "-p", "no:randomly",
         "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_the_floor_script_runs():
    """bench/floor.py (the session next to a minimal protocol) on a tiny load."""
    proc = subprocess.run(
        [sys.executable, "bench/floor.py", "--count", "20", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "session / minimal" in proc.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the soak runs Dovecot, which needs root")
@pytest.mark.requires("dovecot")
def test_the_soak_script_runs():
    """bench/soak.py (RSS and descriptors of a worker over a long run) on a tiny load."""
    proc = subprocess.run(
        [sys.executable, "bench/soak.py", "--handshakes", "20", "--sessions", "4",
         "--samples", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "| smtp | 4 |" in proc.stdout and "flat?" in proc.stdout
