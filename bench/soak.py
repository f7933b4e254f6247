"""Soak: the memory and the descriptors of one mailgate worker over a long run.

    python bench/soak.py                           # 100,000 handshakes, 20,000 sessions each
    python bench/soak.py --handshakes 20000 --sessions 2000 --samples 10 --json soak.json
    python bench/soak.py --loop asyncio            # the worker on asyncio's own loop

It starts what ``bench/compare.py`` starts (its ``Bench``: the test PKI, Dovecot, the
SMTP backend and the auth_http server of tests/support) with the ``mailgate`` binary
alone (``worker_processes 1``, ``daemon off``, the workers' loop from ``MAILGATE_LOOP``),
then runs four phases one after the other on the same worker: full TLS 1.3 handshakes
(connect, handshake, greeting, close) and IMAP, POP3 and SMTP login sessions (TLS,
login through auth_http, the backend, a message read or sent, logout), each through
``bench/loadgen.py`` (4 client threads) in ``--samples`` batches.  After every batch
(its connections closed, a short settle) it reads the worker's RSS (``VmRSS`` of
/proc/PID/status) and its open descriptors (/proc/PID/fd).

It prints the curve (a markdown table: phase, operations so far, RSS, descriptors) and,
per phase, whether RSS and descriptors are flat after the warm-up (the first fifth of
the phase): the last sample's RSS within ``--tolerance`` KiB of the first sample after
the warm-up, the descriptors back to where they were.  ``--json FILE`` keeps every
sample.  Loopback only; every batch is bounded in operations and seconds, the whole
run by ``--max-minutes`` (it stops early and says so).  The exit status is non-zero
when a client saw an error, the worker was replaced, or the log has an [alert]/[emerg]
line or a traceback.  Needs root (Dovecot), like compare.py.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench, tests.support

from bench.compare import FIGURES, SETTLE, Bench, loadgen, machine_facts
from tests.e2e.gates import rss_bytes, worker_pids
from tests.support.components import missing
from tests.support.procinfo import event_loop, fd_count
from tests.support.procs import wait_until
from tests.support.proxy import IMPLEMENTATIONS, LOOPS

PHASES = ("handshake", "imap", "pop3", "smtp")
WARM_UP = 0.2  # the share of a phase's batches that counts as warm-up
SECONDS_PER_OPERATION = 0.05  # a batch's time bound: generous (operations take ~1-3 ms)


@dataclass
class Sample:
    """The worker after a batch (``operations``: of the phase so far)."""

    phase: str
    operations: int
    errors: int
    rss_kib: int
    fds: int
    elapsed: float


def _sample(worker: int, phase: str, operations: int, errors: int, began: float) -> Sample:
    return Sample(phase, operations, errors, rss_bytes(worker) // 1024, fd_count(worker),
                  round(time.monotonic() - began, 1))


def run_phase(bench: Bench, name: str, phase: str, total: int, samples: int, worker: int,
              began: float, deadline: float, log) -> list[Sample]:
    """``total`` operations of ``phase`` in ``samples`` batches, a sample after each."""
    figure = next(f for f in FIGURES if f.name == phase)
    batch = max(1, total // samples)
    done = errors = 0
    curve = []
    while done < total and time.monotonic() < deadline:
        count = min(batch, total - done)
        result = loadgen(bench, name, figure, count=count,
                         duration=max(30.0, count * SECONDS_PER_OPERATION))
        done += result["ops"]
        errors += result["errors"]
        if result["errors"]:
            log(f"  errors: {result['error_samples']}")
        if not result["ops"]:
            break  # nothing gets through: the errors say why
        time.sleep(SETTLE)
        curve.append(_sample(worker, phase, done, errors, began))
        log(f"  {phase} {done}/{total}: RSS {curve[-1].rss_kib} KiB, {curve[-1].fds} fds")
    return curve


def verdict(curve: list[Sample], baseline_fds: int, tolerance_kib: int) -> dict:
    """Whether RSS and descriptors stay flat after the warm-up of one phase."""
    settled = curve[min(len(curve) - 1, int(len(curve) * WARM_UP))]
    last = curve[-1]
    growth = last.rss_kib - settled.rss_kib
    return {"phase": last.phase, "operations": last.operations, "errors": last.errors,
            "rss_after_warm_up": settled.rss_kib, "rss_end": last.rss_kib,
            "rss_growth": growth, "fds_end": last.fds, "fds_baseline": baseline_fds,
            "flat": abs(growth) <= tolerance_kib and last.fds == baseline_fds}


def table(curve: list[Sample]) -> str:
    out = ["| phase | operations | RSS (KiB) | fds | errors |", "| --- | ---: | ---: | ---: | ---: |"]
    out += [f"| {s.phase} | {s.operations} | {s.rss_kib} | {s.fds} | {s.errors} |" for s in curve]
    return "\n".join(out)


def verdict_table(verdicts: list[dict]) -> str:
    out = ["| phase | operations | RSS after warm-up → end (KiB) | growth | fds end (idle) | flat? |",
           "| --- | ---: | ---: | ---: | ---: | --- |"]
    for v in verdicts:
        out.append(f"| {v['phase']} | {v['operations']} | {v['rss_after_warm_up']} → "
                   f"{v['rss_end']} | {v['rss_growth']:+d} KiB | {v['fds_end']} "
                   f"({v['fds_baseline']}) | {'yes' if v['flat'] else '**no**'} |")
    return "\n".join(out)


def mailgate_version(name: str) -> str:
    """``mailgate -V`` as the soaked binary prints it (its environment, its loop)."""
    implementation = IMPLEMENTATIONS[name]
    done = subprocess.run([sys.executable, "-m", "mailgate", "-V"], capture_output=True,
                          text=True, env=implementation.environment(), check=False)
    return (done.stdout + done.stderr).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mailgate soak: RSS and descriptors over time")
    parser.add_argument("--handshakes", type=int, default=100_000, help="TLS handshakes")
    parser.add_argument("--sessions", type=int, default=20_000,
                        help="login sessions per protocol (IMAP, POP3, SMTP)")
    parser.add_argument("--samples", type=int, default=20, help="samples per phase")
    parser.add_argument("--loop", choices=LOOPS, default=None,
                        help="MAILGATE_LOOP for the worker (default: the binary's choice)")
    parser.add_argument("--tolerance", type=int, default=1024,
                        help="KiB of RSS growth after the warm-up still called flat")
    parser.add_argument("--max-minutes", type=float, default=90.0, help="bound of the whole run")
    parser.add_argument("--json", default="", help="write the samples and verdicts here")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (Dovecot's mail processes run as nobody)")
    if why := missing("dovecot"):
        parser.error(why)
    name = f"mailgate-{args.loop}" if args.loop else "mailgate"
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    facts = machine_facts()
    version = mailgate_version(name)
    log(json.dumps(facts))
    directory = Path(tempfile.mkdtemp(prefix="mailgate-soak-"))
    bench = Bench(directory)
    curve: list[Sample] = []
    verdicts: list[dict] = []
    replaced = False
    began = time.monotonic()
    deadline = began + args.max_minutes * 60
    try:
        bench.start(proxies=(name,))
        proxy = bench.proxies[name]
        # the master forks the worker once its sockets listen: wait for it
        if not wait_until(lambda: len(worker_pids(proxy)) == 1, 10):
            raise RuntimeError(f"no worker: {proxy.diagnostics()}")
        (worker,) = worker_pids(proxy)
        loop = event_loop(worker)
        curve.append(_sample(worker, "start", 0, 0, began))
        baseline_fds = curve[0].fds
        for phase in PHASES:
            total = args.handshakes if phase == "handshake" else args.sessions
            log(f"{phase}: {total}")
            phase_curve = run_phase(bench, name, phase, total, args.samples, worker, began,
                                    deadline, log)
            curve += phase_curve
            if phase_curve:
                verdicts.append(verdict(phase_curve, baseline_fds, args.tolerance))
            if worker_pids(proxy) != [worker]:
                replaced = True
                log(f"the worker {worker} was replaced: {worker_pids(proxy)}")
                break
        stopped_early = time.monotonic() >= deadline
        problems = bench.check_logs()
    finally:
        bench.stop()
        shutil.rmtree(directory, ignore_errors=True)
    minutes = (time.monotonic() - began) / 60
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": facts, "mailgate": version, "loop": loop, "minutes": minutes,
            "samples": [asdict(s) for s in curve], "verdicts": verdicts}, indent=1))
    print(f"Machine: {facts['cpu']}, {facts['cores']} cores; Linux {facts['kernel']}; "
          f"{facts['date']}; {minutes:.1f} minutes{' (stopped at --max-minutes)' if stopped_early else ''}.")
    print(f"The worker's event loop: {loop}.\n\n```\n{version}\n```\n")
    print(table(curve))
    print()
    print(verdict_table(verdicts))
    if problems:
        print("\nProblems in the log:\n" + "\n".join(problems))
    errors = sum(v["errors"] for v in verdicts)
    return 1 if errors or problems or replaced else 0


if __name__ == "__main__":
    sys.exit(main())
