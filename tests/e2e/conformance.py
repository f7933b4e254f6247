"""Run the same client scripts through nginx and mailgate and compare what the client
saw (``assert_same_transcript``, salts masked) and what the error log says."""

from __future__ import annotations

import difflib
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.e2e.gates import LOG_LINE, raw_log
from tests.support.procs import wait_until
from tests.support.transcript import (
    MASK_SALTS,
    Event,
    Transcript,
    assert_same_transcript,
    run_script,
)

__all__ = ["Script", "compare", "normalized_log"]

COMPARED_LENGTH = 1900
"""How much of a log message is compared: a line is cut at 2047 bytes with its prefix,
whose length differs (pids; nginx numbers every connection, auth_http and backend
ones too, mailgate the client sessions)."""
_PORT_NAME = re.compile(r"\$\{port_(\w+)\}")
_CLIENT_PORT = re.compile(r"client (127\.0\.0\.1|\[[0-9a-f:]+\]):\d+ connected")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LINE_ENDS = re.compile(r"(?:\\x0d|\\x0a)+")


@dataclass(frozen=True)
class Script:
    """A named client script against the listener ``port`` of the configuration;
    ``setup`` runs before each run (e.g. to choose the auth server's answer)."""

    name: str
    port: str
    steps: list = field(default_factory=list)
    implicit_tls: bool = False
    setup: Callable[[], object] | None = None


def normalized_log(gate, body: str) -> list[str]:
    """The session lines (info and above) of ``gate``'s log, comparable across proxies:
    no time, pid or connection number, ports by their ``${port_NAME}`` names, client
    ports masked."""
    names = {str(gate.port(name)): name for name in _PORT_NAME.findall(body)}
    out: list[str | None] = []
    for line in raw_log(gate).split("\n"):  # a quoted CR stays in its line
        if not line:
            continue
        match = LOG_LINE.match(line)
        if match is None:  # a logged line end (nginx logs client bytes raw)
            if out and out[-1] is not None:
                out[-1] += "\n" + line
            continue
        if not match.group(2) or match.group(1) == "debug":
            out.append(None)
            continue
        out.append(f"[{match.group(1)}] {match.group(3)}")
    return [
        re.sub(r"127\.0\.0\.1:(\d+)", lambda m: "127.0.0.1:" + names.get(m.group(1), "UPSTREAM"),
               _CLIENT_PORT.sub(r"client \1:PORT connected", text))[:COMPARED_LENGTH]
        for text in out if text is not None]


ESCAPED_CONTROL_BYTES = (r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}")
"""nginx writes the client's, backend's and auth server's bytes it quotes raw; mailgate
escapes control bytes as ``\\xNN`` so that no peer can forge or split a log line."""


def _reset_as_close(transcript: Transcript) -> Transcript:
    reset = Event("error", b"ConnectionResetError")
    return Transcript([Event("eof") if e == reset else e for e in transcript.events])


def compare(reference, ours, body: str, scripts: list[Script], *,
            tls_context: ssl.SSLContext | None = None, log_lines: bool = True,
            hooks=MASK_SALTS, log_differences=(), reset_is_close: bool = False) -> None:
    """Run every script through both started proxies; fail with every difference (the
    client's transcripts, then the session log lines).

    ``log_differences`` are justified ones: ``(regex, replacement)`` turning nginx's
    normalized log line into what mailgate writes instead.  ``reset_is_close`` counts
    a connection reset as the server's close (nginx closes with unread bytes left)."""
    problems = []
    for script in scripts:
        transcripts: list[Transcript] = []
        for gate in (reference, ours):
            if script.setup is not None:
                script.setup()
            transcripts.append(run_script(
                gate.address(script.port), script.steps, tls_context=tls_context,
                implicit_tls=script.implicit_tls, server_hostname="localhost"))
        if reset_is_close:
            transcripts = [_reset_as_close(t) for t in transcripts]
        try:
            assert_same_transcript(*transcripts, *hooks)
        except AssertionError as exc:
            problems.append(f"{script.name}: {exc}")
        if transcripts[0].timed_out:
            problems.append(
                f"{script.name}: the script waited for nginx in vain:\n{transcripts[0]}")
    if log_lines:
        # the last session's lines come when its connection is closed
        wait_until(lambda: len(normalized_log(ours, body)) >= len(normalized_log(reference, body)),
                   2)
        left, right = normalized_log(reference, body), normalized_log(ours, body)
        for pattern, replacement in (*log_differences, ESCAPED_CONTROL_BYTES):
            left = [re.sub(pattern, replacement, line, flags=re.DOTALL) for line in left]
        # justified: nginx writes client bytes raw (their CR or LF split its log line,
        # and reading the file back cannot tell which); mailgate escapes control bytes
        # so that no client can forge log lines
        left, right = ([_LINE_ENDS.sub("\\\\x0a", _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group()), line))
                        for line in side] for side in (left, right))
        if left != right:
            problems.append("error log lines differ:\n" + "\n".join(
                difflib.unified_diff(left, right, "nginx", ours.name, lineterm="")))
    if problems:
        raise AssertionError("\n\n".join(problems))
