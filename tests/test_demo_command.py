"""``mailgate demo``: the out-of-the-box proxy answers the curl commands it prints."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mailgate

pytestmark = pytest.mark.requires("curl")


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(mailgate.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@pytest.fixture
def demo(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailgate", "demo", "--any-ports", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(),
        start_new_session=True)
    lines = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("press Ctrl-C"):
                break
        else:
            pytest.fail("mailgate demo did not get ready: %r" % lines)
        yield proc, [l.strip() for l in lines if l.startswith("  curl") or l.startswith("  printf")
                     or l.startswith("  openssl")]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        stderr = proc.stderr.read()
        assert "Traceback" not in stderr, stderr


def run(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, timeout=30)


def test_the_printed_curl_commands_work(demo):
    proc, commands = demo
    curls = [c for c in commands if " curl " in " " + c]
    assert len(curls) == 4
    imaps, imap_starttls, pop3s, smtp = curls
    for command in (imaps, imap_starttls, pop3s):
        result = run(command)
        assert result.returncode == 0, result.stderr
        assert b"Subject: Welcome, alice" in result.stdout
    assert run(smtp).returncode == 0
    bob = run(imaps.replace("alice:wonderland", "bob:builder").replace("UID=1", "UID=2"))
    assert bob.returncode == 0 and bob.stdout == b"Subject: hi\r\n\r\nHello Bob.\r\n"


def test_a_wrong_password_is_refused(demo):
    proc, commands = demo
    result = run(commands[0].replace("wonderland", "wrong"))
    assert result.returncode != 0


def test_the_certificate_is_made_once(tmp_path):
    from mailgate.demo.command import make_certificate

    cert, key = make_certificate(tmp_path, "127.0.0.1")
    first = cert.read_bytes()
    assert make_certificate(tmp_path, "127.0.0.1")[0].read_bytes() == first
    assert oct(key.stat().st_mode & 0o777) == "0o600"
