"""Error logging: nginx's line format, levels per destination, files, syslog, memory, context."""

from __future__ import annotations

import os
import re
import socket

from mailgate.config import LogTarget
from mailgate.log import ErrorLog, LogFiles, SessionContext, format_line, printable

LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] (\d+)#(\d+): (.*)\n$")


def test_line_format():
    match = LINE.match(format_line("error", "boom", conn=7))
    assert match and match.group(1) == "error" and int(match.group(2)) == os.getpid()
    assert match.group(4) == "*7 boom"
    assert LINE.match(format_line("info", "plain")).group(4) == "plain"


def test_long_lines_are_cut():
    assert len(format_line("info", "x" * 10_000)) == 2048  # nginx's 2048 bytes, line feed included


def test_levels_per_destination_and_shared_files(tmp_path):
    files = LogFiles()
    path = str(tmp_path / "error.log")
    log = ErrorLog([LogTarget("file", "warn", path=path), LogTarget("file", "info", path=path)], files)
    log.log("debug", "not written")
    log.log("info", "once")
    log.log("error", "twice")
    lines = [LINE.match(l + "\n").group(4) for l in open(path).read().splitlines()]
    assert lines == ["once", "twice", "twice"]
    assert log.enabled("info") and not log.enabled("debug")
    files.close()


def test_reopen_after_rotation(tmp_path):
    files = LogFiles()
    path = tmp_path / "error.log"
    log = ErrorLog([LogTarget("file", "info", path=str(path))], files)
    log.log("info", "before")
    os.rename(path, tmp_path / "error.log.1")
    log.log("info", "still old")
    files.reopen()
    log.log("info", "after")
    assert "before" in (tmp_path / "error.log.1").read_text()
    assert "still old" in (tmp_path / "error.log.1").read_text()
    assert "after" in path.read_text() and "before" not in path.read_text()
    files.close()


def test_syslog_udp_rfc3164(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        log = ErrorLog([LogTarget("syslog", "info", address=("127.0.0.1", port), facility="mail",
                                  tag="mg")], LogFiles(), hostname="box")
        log.log("error", "upstream failed", conn=3)
        data = receiver.recv(4096).decode()
    match = re.match(r"^<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) box mg: (.*)$", data)
    assert match, data
    assert int(match.group(1)) == 2 * 8 + 3  # mail.err
    assert LINE.match(match.group(3) + "\n").group(4) == "*3 upstream failed"


def test_syslog_over_a_unix_socket_without_hostname(tmp_path):
    path = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        receiver.settimeout(5)
        log = ErrorLog([LogTarget("syslog", "info", address=path, nohostname=True)], LogFiles())
        log.log("warn", "w")
        data = receiver.recv(4096).decode()
    assert re.match(r"^<188>\w{3} [ \d]\d \d\d:\d\d:\d\d nginx: ", data), data  # local7.warning


def test_unreachable_syslog_is_harmless():
    log = ErrorLog([LogTarget("syslog", "info", address="/nonexistent/dev/log")], LogFiles())
    log.log("error", "dropped")


def test_memory_keeps_the_latest_lines():
    log = ErrorLog([LogTarget("memory", "info", size=200)], LogFiles())
    for i in range(20):
        log.log("info", "line %d" % i)
    lines = log.memory_lines()
    assert 0 < sum(map(len, lines)) <= 200 and lines[-1].endswith("line 19\n")


def test_session_context():
    ctx = SessionContext(1, "127.0.0.1", "127.0.0.1:30143")
    assert ctx.describe("client timed out (110: Connection timed out)", "in auth state") == (
        "client timed out (110: Connection timed out) while in auth state, client: 127.0.0.1, "
        "server: 127.0.0.1:30143")
    ctx.starttls, ctx.login, ctx.upstream = True, b"good", "127.0.0.1:30993"
    assert ctx.describe("client logged in", "") == (
        'client logged in, client: 127.0.0.1 using starttls, server: 127.0.0.1:30143, '
        'login: "good", upstream: 127.0.0.1:30993')


def test_client_bytes_cannot_split_log_lines():
    assert printable(b"evil\r\n2026/01/01 [emerg] forged") == "evil\\x0d\\x0a2026/01/01 [emerg] forged"
    assert printable("jürgen".encode()) == "jürgen"
