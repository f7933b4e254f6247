"""The error log's disk is full: every write of a log line fails with ENOSPC (a 64 KiB
tmpfs mounted for the test and filled to the last byte).  As nginx, the proxy does not
care: sessions go on, workers live; lines written while the disk is full are lost, and
once there is room again they are written again."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.gates import raw_log, worker_pids
from tests.faults.helpers import assert_serves, start
from tests.support.configs import one_server_each
from tests.support.procs import wait_until

MAIL = one_server_each()
PAGE = os.sysconf("SC_PAGE_SIZE")  # tmpfs hands out whole pages


class FullDisk:
    """A tiny tmpfs mounted on ``directory``; ``fill()`` takes every free byte."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.filler = directory / "filler"
        directory.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")

    def fill(self, log: Path) -> None:
        """Take every free byte: the rest of the log's last page (tmpfs hands out whole
        pages, a file grows within its last one), then all the free pages."""
        room = -os.path.getsize(log) % PAGE
        if room:
            with open(log, "ab") as out:
                out.write(b" " * (room - 1) + b"\n")
        with open(self.filler, "ab", buffering=0) as out:
            for size in (PAGE, 1):
                try:
                    while True:
                        out.write(b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc

    def free(self) -> None:
        self.filler.unlink()

    def close(self) -> None:
        # lazily: a proxy may still hold its log open until its own teardown
        subprocess.run(["umount", "-l", str(self.directory)], check=False)


@pytest.fixture
def full_disk(tmp_path: Path):
    """A file system that the test can fill (needs root to mount; skipped without)."""
    disk = FullDisk(tmp_path / "disk")
    yield disk
    disk.close()


def _logged_in(gate) -> int:
    return raw_log(gate).count("client logged in")


def test_error_log_on_a_full_disk(sut, full_disk, auth_server, dovecot, smtp_backend):
    path = full_disk.directory / "error.log"
    sut.error_log_path = path
    workers = worker_pids(start(sut, MAIL))
    full_disk.fill(path)
    size = os.path.getsize(path)
    for _ in range(3):
        assert_serves(sut, workers)  # three logins a round, each logged at info
    assert os.path.getsize(path) == size  # every line was lost: the disk was full indeed
    full_disk.free()
    logged = _logged_in(sut)
    assert_serves(sut, workers)
    assert wait_until(lambda: _logged_in(sut) == logged + 3, 3), raw_log(sut)[-2000:]
