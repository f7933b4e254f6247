"""Run fuzz targets with atheris (libFuzzer).

    python -m tests.fuzz TARGET [--runs N | --seconds S] [--work DIR] [-- LIBFUZZER_FLAG ...]
    python -m tests.fuzz TARGET INPUT ...          run each input once (a crash, a regression)
    python -m tests.fuzz --all [TARGET ...] [--runs N | --seconds S] [--jobs J]
    python -m tests.fuzz --list

One target runs in this process: its module is imported under atheris's
instrumentation (of the ``mailgate`` and ``dns`` modules it imports; the compiled
extensions and OpenSSL are not instrumented), then libFuzzer mutates inputs starting
from ``corpus/TARGET/``.
What it finds goes to the work directory (default ``$TMPDIR/mailgate-fuzz/TARGET``):
new inputs to ``WORK/corpus`` (kept for the next run), a crash to ``WORK/crash-*``.
A crash fixed in the engine becomes ``regressions/TARGET/NAME``.

``--all`` runs every target (or those named) in its own process, ``--jobs`` at a time, and prints a
table of executions, speed and coverage (also in ``WORK/summary.json``, with each
target's log in ``WORK/TARGET.log``); the exit status is 0 only if none crashed.

A target's ``KNOWN_BUGS`` (exception type, message, file) are stepped over while fuzzing
(:func:`tests.fuzz.lenient`), so that a long run goes on past a bug reported but not
fixed yet; each is tracked by an expected-to-fail input in ``regressions/``, and a
replayed INPUT fails on it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.fuzz import CORPUS, ROOT, TARGETS, lenient, load

#: libFuzzer's per-input time limit (a hang is a crash) and memory limit
INPUT_TIMEOUT = 10
RSS_LIMIT_MB = 2048
DEFAULT_SECONDS = 60

_DONE = re.compile(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+).*?exec/s: (\d+)")


def dictionary_text(tokens: Iterable[bytes]) -> str:
    """libFuzzer's dictionary format: one quoted token per line, ``\\xNN`` escapes."""
    lines = []
    for token in tokens:
        quoted = "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}"
                         for b in token)
        lines.append(f'"{quoted}"')
    return "\n".join(lines) + "\n"


def _budget(args: argparse.Namespace) -> list[str]:
    if args.runs is not None:
        return [f"-runs={args.runs}"]
    return [f"-max_total_time={args.seconds or DEFAULT_SECONDS}"]


def run_one(args: argparse.Namespace) -> None:
    """Fuzz (or replay inputs on) one target in this process; never returns."""
    import atheris

    work = Path(args.work or Path(tempfile.gettempdir()) / "mailgate-fuzz" / args.target)
    (work / "corpus").mkdir(parents=True, exist_ok=True)
    os.environ["MAILGATE_FUZZ_WORK"] = str(work)
    # dnspython too: coverage inside its message parser leads the dns_answer target to
    # well-formed answers (no other target imports it)
    with atheris.instrument_imports(include=["mailgate", "dns"]):
        module = load(args.target)
    flags = [f"-artifact_prefix={work}/", f"-timeout={INPUT_TIMEOUT}",
             f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={getattr(module, 'MAX_LEN', 4096)}"]
    if args.inputs:
        argv = [sys.argv[0], *flags, *args.inputs]
    else:
        tokens = getattr(module, "DICTIONARY", ())
        if tokens:
            (work / "dictionary").write_text(dictionary_text(tokens))
            flags.append(f"-dict={work / 'dictionary'}")
        flags += ["-print_final_stats=1", *_budget(args), *args.libfuzzer]
        argv = [sys.argv[0], *flags, str(work / "corpus"), str(CORPUS / args.target)]
    print(f"fuzz {args.target}: {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    known = getattr(module, "KNOWN_BUGS", ())
    if known and not args.inputs:
        print(f"stepping over known bugs: {known}", file=sys.stderr, flush=True)
    # a replayed input fails on a known bug as on any other
    atheris.Setup(argv, module.one_input if args.inputs else lenient(module))
    atheris.Fuzz()


def _child(target: str, args: argparse.Namespace, work: Path) -> dict:
    """Run one target in a subprocess; its figures from libFuzzer's last lines."""
    log = work / f"{target}.log"
    command = [sys.executable, "-m", "tests.fuzz", target, *_budget_args(args),
               "--work", str(work / target)]
    if args.libfuzzer:
        command += ["--", *args.libfuzzer]
    started = time.monotonic()
    with open(log, "wb") as out:
        code = subprocess.call(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    text = log.read_text(errors="replace")
    found = _DONE.findall(text)
    runs, cov, ft, corpus, size, speed = found[-1] if found else ("?",) * 6
    return {"target": target, "status": "ok" if code == 0 else f"FAILED ({code})",
            "runs": runs, "exec/s": speed, "cov": cov, "ft": ft, "corpus": f"{corpus}/{size}",
            "seconds": f"{time.monotonic() - started:.0f}", "log": str(log)}


def _budget_args(args: argparse.Namespace) -> list[str]:
    if args.runs is not None:
        return ["--runs", str(args.runs)]
    return ["--seconds", str(args.seconds or DEFAULT_SECONDS)]


def run_all(args: argparse.Namespace, targets: list[str]) -> int:
    """Each target in its own process, ``--jobs`` at a time; a table of the results."""
    work = Path(args.work or Path(tempfile.gettempdir()) / "mailgate-fuzz")
    work.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda target: _child(target, args, work), targets))
    (work / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    columns = ("target", "status", "runs", "exec/s", "cov", "ft", "corpus", "seconds")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row[c] for c in columns) + " |")
    failed = [row for row in rows if row["status"] != "ok"]
    for row in failed:
        print(f"{row['target']}: see {row['log']}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    libfuzzer: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, libfuzzer = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", nargs="?", choices=TARGETS, metavar="TARGET")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="files to run once each")
    parser.add_argument("--all", action="store_true",
                        help="every target (or those named), one process each")
    parser.add_argument("--list", action="store_true", help="print the target names")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--runs", type=int, help="executions per target")
    budget.add_argument("--seconds", type=int, help=f"time per target (default "
                                                     f"{DEFAULT_SECONDS})")
    parser.add_argument("--jobs", type=int, default=1, help="targets at a time with --all")
    parser.add_argument("--work", help="work directory (corpus, crashes, logs)")
    args = parser.parse_args(argv)
    args.libfuzzer = libfuzzer
    if args.list:
        print("\n".join(TARGETS))
        return 0
    if args.all:
        named = [args.target, *args.inputs] if args.target else list(TARGETS)
        unknown = set(named) - set(TARGETS)
        if unknown:
            parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
        return run_all(args, named)
    if args.target is None:
        parser.error("name a TARGET, or use --all or --list")
    run_one(args)
    return 0  # not reached: libFuzzer exits the process


if __name__ == "__main__":
    sys.exit(main())
