"""Profile mailgate's worker under one figure's load of the macro benchmark.

    python bench/profile.py imap                 # py-spy, 10 s, top functions
    python bench/profile.py bulk --native --out /tmp/bulk.txt
    python bench/profile.py bulk --perf          # perf: CPU by shared object and symbol

Starts the same environment as ``bench/compare.py`` (Dovecot, SMTP backend,
auth_http, both proxies), runs the figure's load generator against mailgate in a
loop, and records the worker with ``py-spy record`` (``pip install py-spy``).  The
collapsed stacks go to ``--out``; the functions with the most samples, by self
and by total time, are printed.  With ``--perf``, ``perf record`` samples the worker
instead (kernel and C included, no Python frames) and the report by shared object
and by symbol is printed.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare


def worker_pid(master: int) -> int:
    deadline = time.monotonic() + 10
    while True:  # the master listens before it forks the worker
        children = [pid for pid in compare.group_pids(master) if pid != master]
        if children or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if len(children) != 1:
        raise RuntimeError(f"expected one worker, found {children}")
    return children[0]


def top(collapsed: str, n: int) -> str:
    self_time: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        count = int(count)
        samples += count
        frames = stack.split(";")
        self_time[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    out = [f"{samples} samples", "", "self:"]
    out += [f"  {c / samples:6.1%}  {f}" for f, c in self_time.most_common(n)]
    out += ["", "total:"]
    out += [f"  {c / samples:6.1%}  {f}" for f, c in total.most_common(n)]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="py-spy profile of mailgate's worker under load")
    parser.add_argument("figure", choices=[f.name for f in compare.FIGURES])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--native", action="store_true", help="C frames too (py-spy --native)")
    parser.add_argument("--out", default="", help="collapsed stacks file")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--perf", action="store_true", help="perf record instead of py-spy")
    args = parser.parse_args(argv)
    if args.perf and shutil.which("perf") is None:
        parser.error("perf is not installed (apt-get install linux-perf)")
    if not args.perf and shutil.which("py-spy") is None:
        parser.error("py-spy is not installed (pip install py-spy)")
    figure = next(f for f in compare.FIGURES if f.name == args.figure)
    directory = Path(tempfile.mkdtemp(prefix="mailgate-profile-"))
    bench = compare.Bench(directory)
    out = Path(args.out) if args.out else directory / "stacks.txt"
    stop = threading.Event()
    try:
        bench.start()
        pid = worker_pid(bench.proxies["mailgate"].master_pid)

        def load() -> None:
            deadline = time.monotonic() + args.seconds + 30
            while not stop.is_set() and time.monotonic() < deadline:
                compare.loadgen(bench, "mailgate", figure)

        thread = threading.Thread(target=load, daemon=True)
        thread.start()
        time.sleep(1.0)
        if args.perf:
            data = directory / "perf.data"
            subprocess.run(["perf", "record", "-e", "cpu-clock", "-F", "2000", "-o", str(data),
                            "-p", str(pid), "--", "sleep", str(args.seconds)],
                           check=True, capture_output=True, timeout=args.seconds + 60)
            stop.set()
            for sort in ("dso", "dso,sym"):
                report = subprocess.run(
                    ["perf", "report", "-i", str(data), "--stdio", "--sort", sort, "--percent-limit", "0.7"],
                    check=True, capture_output=True, text=True).stdout
                print("\n".join(line for line in report.splitlines() if line and not line.startswith("#")))
            return 0
        cmd = ["py-spy", "record", "--pid", str(pid), "--duration", str(args.seconds),
               "--rate", "500", "--format", "raw", "--output", str(out)]
        if args.native:
            cmd.append("--native")
        subprocess.run(cmd, check=True, capture_output=True, timeout=args.seconds + 60)
        stop.set()
        thread.join(120)
        print(top(out.read_text(), args.top))
        if args.out:
            print(f"\ncollapsed stacks: {out}")
    finally:
        stop.set()
        bench.stop()
        if not args.out:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
