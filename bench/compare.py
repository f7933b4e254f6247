"""mailgate side by side with Debian's nginx mail proxy: the macro benchmark.

    python bench/compare.py                 # every figure, 5 A/B rounds (~15 min)
    python bench/compare.py --rounds 3 --only handshake,imap
    python bench/compare.py --list          # the figures

It starts Dovecot (IMAP, POP3), an SMTP backend, one auth_http server (all from
tests/support), then nginx (+ the mail module) and mailgate (``python -m mailgate``),
each with one worker, ``daemon off``, on the very same configuration file (only
``-g`` differs: nginx's ``load_module`` and ``user root``).  For each figure the load
generator (``bench/loadgen.py``, a separate process) runs against one proxy, then
the other, alternating which goes first, for ``--rounds`` rounds after one warm-up
run each.  Each proxy's CPU is the sum over all its processes (master and worker)
of the scheduler's run time (``/proc/PID/schedstat``, the nanosecond figure behind
utime+stime; utime+stime from ``/proc/PID/stat`` is recorded too), read before and
after every round.  Memory is RSS and PSS from ``/proc/PID/smaps_rollup``, of freshly started proxies
(warmed up with a few connections) without and with the idle connections.

Reported: medians over the rounds of CPU per operation, throughput and latency, and
the mailgate/nginx ratio of the medians against the budgets of ``FIGURES`` (the table
of bench/README.md).  Loopback only; every round is bounded in count and time.
Needs root (Dovecot), nginx and libnginx-mod-mail, dovecot-imapd, dovecot-pop3d
(tests/support/install-system-deps.sh) and mailgate itself: built in place (``python
setup.py build_ext --inplace``), or installed (``pip install '.[test]'``, the README's
install) when the tree is not built.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support
if any((ROOT / "engine" / "mailgate").glob("_openssl*.so")):
    # a source tree built in place (setup.py build_ext --inplace); else the installed package
    sys.path.insert(0, str(ROOT / "engine"))

from tests.support.auth_http import AuthHttpServer, DefaultPolicy
from tests.support.certs import make_pki
from tests.support.components import missing
from tests.support.dovecot import Dovecot
from tests.support.messages import big_message, make_message
from tests.support.ports import PortAllocator
from tests.support.proxy import IMPLEMENTATIONS, Mailgate, MailProxy
from tests.support.smtp_backend import SmtpBackend
from tests.support.users import ALICE, BULK, DEFAULT_USERS

LOADGEN = ROOT / "bench" / "loadgen.py"
SUBJECT = "mailgate"
PROXIES = ("nginx", SUBJECT)
"""The reference, then this tree's mailgate (``--baseline`` makes the reference another
build of mailgate: an A/B of two builds on the same load)."""
BULK_SIZE = 10 * 1024 * 1024
IDLE_CONNECTIONS = 2000

# The same mail{} for both proxies.  Certificates, protocols and ciphers are set
# explicitly, so both negotiate the same thing with the same client: TLS 1.3 with
# TLS_AES_256_GCM_SHA384 (OpenSSL's default suites, the client's first choice), or
# TLS 1.2 with the one ECDHE-ECDSA/RSA AES-256-GCM suite listed; X25519 both ways.
MAIL = """
    server_name mx.test;
    auth_http $auth_http;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384;
    ssl_certificate $ecdsa_cert;
    ssl_certificate_key $ecdsa_key;
    ssl_session_cache shared:BENCH:10m;
    ssl_session_timeout 10m;

    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
    server {
        listen 127.0.0.1:${port_imaps_rsa} ssl; protocol imap;
        ssl_certificate $rsa_cert; ssl_certificate_key $rsa_key;
    }
    server { listen 127.0.0.1:${port_imaps_noticket} ssl; protocol imap; ssl_session_tickets off; }
    server { listen 127.0.0.1:${port_pop3s} ssl; protocol pop3; }
    server { listen 127.0.0.1:${port_smtps} ssl; protocol smtp; smtp_auth plain login; }
"""


OBSERVE = """
    access_log %s;
    status_listen 127.0.0.1:${port_status};
"""
"""``--observe``: what this tree's mailgate adds to MAIL (an access log line per session,
the status server, scraped once a second while the rounds run); the reference runs
without."""
SCRAPE_INTERVAL = 1.0


class MailgateTree(Mailgate):
    """The ``mailgate`` binary of another source tree, built in place (``--baseline``)."""

    name = "baseline"

    def __init__(self, tree: Path) -> None:
        self.engine = tree.resolve() / "engine"
        if not any((self.engine / "mailgate").glob("_openssl*.so")):
            raise SystemExit(f"{tree}: not built in place (python setup.py build_ext --inplace)")

    def environment(self) -> dict[str, str]:
        return dict(super().environment(), PYTHONPATH=str(self.engine))


class BenchProxy(MailProxy):
    """tests/support's runner, with room for the idle-connection figure."""

    def render(self, mail_body: str, *, main: str = "", events: str = "") -> str:
        return super().render(
            mail_body,
            main=main + "\nworker_rlimit_nofile 16384;",
            events=f"worker_connections {IDLE_CONNECTIONS * 2 + 1000};",
        ).replace(f"error_log {self.error_log_path} info;", f"error_log {self.error_log_path} notice;")


@dataclass
class Figure:
    """One row of the table: a load-generator mode against one listen port."""

    name: str
    title: str
    mode: str
    port: str
    unit: str  # "conn", "session", "GB"
    budget: float | None = None  # mailgate/nginx CPU ratio
    tls: str = "1.3"
    count: int = 1000
    duration: float = 10.0
    concurrency: int = 4
    extra: list[str] = field(default_factory=list)
    latency_budget: float | None = None  # seconds, the first-byte median (greeting)


FIGURES = [
    Figure("greeting", "connect → first greeting byte, implicit TLS 1.3, one client", "handshake",
           "imaps", "conn", count=100, concurrency=1, latency_budget=0.005),
    Figure("handshake", "full TLS 1.3 handshake + greeting (ECDSA P-256)", "handshake", "imaps",
           "conn", budget=1.3, count=1500),
    Figure("handshake-rsa", "full TLS 1.3 handshake + greeting (RSA 2048)", "handshake",
           "imaps_rsa", "conn", budget=1.3, count=1000),
    Figure("handshake-1.2", "full TLS 1.2 handshake + greeting (ECDSA P-256)", "handshake", "imaps",
           "conn", budget=1.3, tls="1.2", count=1500),
    Figure("resume-ticket", "resumed TLS 1.3 handshake, session ticket", "resume", "imaps",
           "conn", budget=1.3, count=2000),
    Figure("resume-id", "resumed TLS 1.3 handshake, session cache (tickets off)", "resume",
           "imaps_noticket", "conn", budget=1.3, count=2000),
    Figure("resume-ticket-1.2", "resumed TLS 1.2 handshake, session ticket", "resume", "imaps",
           "conn", budget=1.3, tls="1.2", count=2000),
    Figure("resume-id-1.2", "resumed TLS 1.2 handshake, session ID", "resume", "imaps_noticket",
           "conn", budget=1.3, tls="1.2", count=2000),
    Figure("imap", "IMAP session: TLS, LOGIN, auth_http, backend login, SELECT, FETCH, LOGOUT",
           "imap", "imaps", "session", budget=1.5, count=600, duration=15.0),
    Figure("bulk", "bulk relay: 10 MB FETCH over TLS 1.3, ×10 per session", "bulk", "imaps", "GB",
           budget=1.2, count=2, duration=60.0, concurrency=1,
           extra=["--user", BULK.login, "--password", BULK.password, "--fetches", "10",
                  "--message-size", str(BULK_SIZE)]),
    Figure("pop3", "POP3 session: TLS, USER, PASS, auth_http, backend login, STAT, RETR, QUIT",
           "pop3", "pop3s", "session", budget=1.5, count=600, duration=15.0,
           extra=["--greeting", "+OK"]),
    Figure("smtp", "SMTP submission: TLS, EHLO, AUTH PLAIN, auth_http, XCLIENT, MAIL, RCPT, DATA, QUIT",
           "smtp", "smtps", "session", budget=1.5, count=400, duration=15.0,
           extra=["--greeting", "220"]),
]
IDLE = "idle"


# -- /proc ---------------------------------------------------------------------------------

def group_pids(pgid: int) -> list[int]:
    """Every process of the proxy's process group (master and workers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pgid: int) -> tuple[float, float]:
    """(scheduler run time, utime+stime) of the group, in seconds."""
    run = ticks = 0.0
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                run += int(f.read().split()[0]) / 1e9
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            ticks += (int(fields[11]) + int(fields[12])) / _TICK
        except OSError:
            continue
    return run, ticks


def memory_kib(pgid: int) -> tuple[int, int]:
    """(RSS, PSS) of the group in KiB."""
    rss = pss = 0
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


# -- the environment ---------------------------------------------------------------------------

class Bench:
    """Backends, auth server and both proxies, started in a temporary directory."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.ports = PortAllocator()
        self.pki = make_pki(directory / "pki")
        self.dovecot = Dovecot(directory / "dovecot", self.ports, users=DEFAULT_USERS)
        self.dovecot.deliver(ALICE.login, make_message("hello alice", "Hello, Alice.\r\n" * 40))
        self.dovecot.deliver(BULK.login, big_message(BULK_SIZE))
        self.smtp = SmtpBackend(self.ports, users=DEFAULT_USERS)
        self.auth: AuthHttpServer | None = None
        self.proxies: dict[str, BenchProxy] = {}
        self.observe = False  # --observe
        self.stopping = threading.Event()
        self.scrapes = 0

    def start(self, proxies: tuple[str, ...] | None = None) -> None:
        """Backends, the auth server, then ``proxies`` (default: ``PROXIES``)."""
        self.dovecot.start()
        self.smtp.start()
        policy = DefaultPolicy(DEFAULT_USERS, {
            "imap": (self.dovecot.host, self.dovecot.imap_port),
            "pop3": (self.dovecot.host, self.dovecot.pop3_port),
            "smtp": (self.smtp.host, self.smtp.port),
        })
        self.auth = AuthHttpServer(self.ports, policy)
        self.auth.start()
        self.start_proxies(proxies)

    def start_proxies(self, proxies: tuple[str, ...] | None = None) -> None:
        """Start the proxies (stopping any that run): fresh processes, fresh heaps."""
        for proxy in self.proxies.values():
            proxy.stop()
        values = {
            "auth_http": self.auth.url,
            "ecdsa_cert": self.pki.server_ecdsa.cert, "ecdsa_key": self.pki.server_ecdsa.key_file,
            "rsa_cert": self.pki.server_rsa.cert, "rsa_key": self.pki.server_rsa.key_file,
        }
        for name in proxies or PROXIES:
            proxy = BenchProxy(IMPLEMENTATIONS[name], self.directory / name, self.ports, values=values)
            observed = self.observe and name == SUBJECT
            proxy.start(OBSERVE % (self.directory / name / "access.log") + MAIL if observed else MAIL)
            self.proxies[name] = proxy
            if observed:
                self._scrape(proxy.port("status"))

    def _scrape(self, port: int) -> None:
        """GET /metrics once a second (as a Prometheus would, more often) until stop()."""
        def scrape() -> None:
            while not self.stopping.wait(SCRAPE_INTERVAL):
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                        r.read()
                        self.scrapes += 1
                except OSError:
                    pass  # restarting between rounds

        threading.Thread(target=scrape, daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        for proxy in self.proxies.values():
            proxy.stop()
        if self.auth is not None:
            self.auth.stop()
            self.auth.requests.clear()
        self.smtp.stop()
        self.dovecot.stop()
        self.ports.release_all()

    def check_logs(self) -> list[str]:
        return [f"{name}: {line}" for name, proxy in self.proxies.items() for line in proxy.problems()]


def loadgen(bench: Bench, proxy: str, figure: Figure, *, count: int | None = None,
            duration: float | None = None) -> dict:
    argv = [
        sys.executable, str(LOADGEN), figure.mode,
        "--port", str(bench.proxies[proxy].port(figure.port)),
        "--ca", str(bench.pki.ca.cert), "--tls", figure.tls,
        "--count", str(count or figure.count), "--duration", str(duration or figure.duration),
        "--concurrency", str(figure.concurrency), *figure.extra,
    ]
    done = subprocess.run(argv, capture_output=True, text=True,
                          timeout=(duration or figure.duration) + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


SETTLE = 0.3  # seconds for the proxies to finish closing the round's connections


def run_round(bench: Bench, proxy: str, figure: Figure) -> dict:
    pgid = bench.proxies[proxy].master_pid
    run0, ticks0 = cpu_seconds(pgid)
    result = loadgen(bench, proxy, figure)
    time.sleep(SETTLE)
    run1, ticks1 = cpu_seconds(pgid)
    ops = result["ops"]
    if figure.unit == "GB":
        per = result["bytes"] / 1e9
    else:
        per = ops
    result.update(cpu=run1 - run0, cpu_ticks=ticks1 - ticks0,
                  cpu_per_unit=(run1 - run0) / per if per else None,
                  throughput=(result["bytes"] / 1e6 / result["wall"]) if figure.unit == "GB"
                  else ops / result["wall"])
    return result


def run_figure(bench: Bench, figure: Figure, rounds: int, log) -> dict:
    for proxy in PROXIES:  # warm-up: caches, Dovecot's login processes, the proxies' heaps
        loadgen(bench, proxy, figure, count=max(4, figure.count // 10), duration=figure.duration / 2)
    data: dict[str, list[dict]] = {p: [] for p in PROXIES}
    for r in range(rounds):
        order = PROXIES if r % 2 == 0 else PROXIES[::-1]
        for proxy in order:
            result = run_round(bench, proxy, figure)
            data[proxy].append(result)
            log(f"  {figure.name} round {r + 1} {proxy:8s} ops={result['ops']:5d} "
                f"errors={result['errors']} cpu/{figure.unit}={fmt_cpu(result['cpu_per_unit'], figure.unit)} "
                f"thr={result['throughput']:.1f} lat_med={result['latency'].get('median', 0) * 1e3:.2f}ms"
                + (f" reused={result.get('reused')}" if "reused" in result else ""))
            if result["errors"]:
                log(f"    errors: {result['error_samples']}")
    return summarize_figure(figure, data)


def median_of(results: list[dict], *path: str):
    values = []
    for r in results:
        v = r
        for key in path:
            v = v.get(key) if isinstance(v, dict) else None
        if v is not None:
            values.append(v)
    return statistics.median(values) if values else None


def summarize_figure(figure: Figure, data: dict[str, list[dict]]) -> dict:
    row = {"figure": figure.name, "title": figure.title, "unit": figure.unit, "budget": figure.budget,
           "latency_budget": figure.latency_budget, "rounds": data}
    for proxy in PROXIES:
        results = data[proxy]
        row[proxy] = {
            "cpu_per_unit": median_of(results, "cpu_per_unit"),
            "throughput": median_of(results, "throughput"),
            "latency_median": median_of(results, "latency", "median"),
            "latency_p99": median_of(results, "latency", "p99"),
            "first_byte_median": median_of(results, "first_byte", "median"),
            "first_byte_p90": median_of(results, "first_byte", "p90"),
            "ops": sum(r["ops"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "reused": sum(r.get("reused", 0) for r in results) if "reused" in results[0] else None,
            "tls": sorted({t for r in results for t in r.get("tls", [])}),
        }
    n, m = row[PROXIES[0]]["cpu_per_unit"], row[SUBJECT]["cpu_per_unit"]
    row["ratio"] = m / n if n and m else None
    pairs = [b["cpu_per_unit"] / a["cpu_per_unit"] for a, b in zip(data[PROXIES[0]], data[SUBJECT])
             if a["cpu_per_unit"] and b["cpu_per_unit"]]
    row["ratio_rounds"] = pairs
    if figure.latency_budget is not None:
        row["holds"] = (row[SUBJECT]["first_byte_median"] or 1e9) <= figure.latency_budget
    elif figure.budget is not None and row["ratio"] is not None:
        row["holds"] = row["ratio"] <= figure.budget
    return row


def run_idle(bench: Bench, rounds: int, count: int, log) -> dict:
    """RSS/PSS of each proxy with ``count`` idle TLS connections, minus without them."""
    data: dict[str, list[dict]] = {p: [] for p in PROXIES}
    warm_up = next(f for f in FIGURES if f.name == "handshake")
    for r in range(rounds):
        # A heap keeps what it once grew to: each round measures fresh processes,
        # after a few connections have set up what every connection shares.
        bench.start_proxies()
        for proxy in PROXIES:
            loadgen(bench, proxy, warm_up, count=20)
        order = PROXIES if r % 2 == 0 else PROXIES[::-1]
        for proxy in order:
            pgid = bench.proxies[proxy].master_pid
            time.sleep(0.5)
            rss0, pss0 = memory_kib(pgid)
            argv = [sys.executable, str(LOADGEN), "idle",
                    "--port", str(bench.proxies[proxy].port("imaps")),
                    "--ca", str(bench.pki.ca.cert), "--count", str(count), "--duration", "120",
                    "--concurrency", "4"]
            gen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                ready = json.loads(gen.stdout.readline())
                time.sleep(1.0)
                rss1, pss1 = memory_kib(pgid)
                gen.stdin.write("close\n")
                gen.stdin.flush()
                gen.wait(60)
            finally:
                if gen.poll() is None:
                    gen.kill()
                    gen.wait()
            held = ready["ready"]
            result = {"connections": held, "errors": ready["errors"],
                      "rss_before": rss0, "rss_after": rss1, "pss_before": pss0, "pss_after": pss1,
                      "rss_per_conn": (rss1 - rss0) * 1024 / held if held else None,
                      "pss_per_conn": (pss1 - pss0) * 1024 / held if held else None}
            data[proxy].append(result)
            log(f"  idle round {r + 1} {proxy:8s} conns={held} rss {rss0}->{rss1} KiB "
                f"pss {pss0}->{pss1} KiB: {result['rss_per_conn']:.0f} B/conn RSS, "
                f"{result['pss_per_conn']:.0f} B/conn PSS")
    row = {"figure": IDLE, "title": f"RSS per idle TLS connection ({count} connections, after the greeting)",
           "unit": "conn", "budget": 2.0, "rounds": data}
    for proxy in PROXIES:
        row[proxy] = {key: median_of(data[proxy], key) for key in
                      ("rss_per_conn", "pss_per_conn", "rss_before", "rss_after", "pss_before", "pss_after")}
    n, m = row[PROXIES[0]]["rss_per_conn"], row[SUBJECT]["rss_per_conn"]
    row["ratio"] = m / n if n and m else None
    row["holds"] = row["ratio"] is not None and row["ratio"] <= 2.0
    return row


# -- reporting ----------------------------------------------------------------------------------

def fmt_cpu(value, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "GB":
        return f"{value:.2f} s"
    return f"{value * 1e6:.0f} µs"


def machine_facts() -> dict:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import uvloop
        uv = uvloop.__version__
    except ImportError:
        uv = "not installed"
    from mailgate.tls._binding import ffi, lib
    nginx = subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True, text=True,
                           check=False).stderr.strip() if os.path.exists("/usr/sbin/nginx") else "—"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
        "python": platform.python_version(), "python_ssl": ssl.OPENSSL_VERSION,
        "openssl": ffi.string(lib.OpenSSL_version(0)).decode(), "uvloop": uv, "nginx": nginx,
    }


def table(rows: list[dict]) -> str:
    out = [f"| figure | {PROXIES[0]} | {SUBJECT} | ratio | budget | holds? |",
           "| --- | ---: | ---: | ---: | --- | --- |"]
    for row in rows:
        n, m = row[PROXIES[0]], row[SUBJECT]
        if row["figure"] == IDLE:
            cells = (f"{n['rss_per_conn']:.0f} B RSS ({n['pss_per_conn']:.0f} B PSS)",
                     f"{m['rss_per_conn']:.0f} B RSS ({m['pss_per_conn']:.0f} B PSS)",
                     f"{row['ratio']:.2f}×", "≤ 2×")
        elif row.get("latency_budget") is not None:
            cells = (f"{n['first_byte_median'] * 1e3:.2f} ms (p90 {n['first_byte_p90'] * 1e3:.1f})",
                     f"{m['first_byte_median'] * 1e3:.2f} ms (p90 {m['first_byte_p90'] * 1e3:.1f})",
                     f"{m['first_byte_median'] / n['first_byte_median']:.2f}×",
                     f"≤ {row['latency_budget'] * 1e3:.0f} ms")
        else:
            unit = {"conn": "/conn", "session": "/session", "GB": "/GB"}[row["unit"]]
            cells = (fmt_cpu(n["cpu_per_unit"], row["unit"]) + unit,
                     fmt_cpu(m["cpu_per_unit"], row["unit"]) + unit,
                     f"{row['ratio']:.2f}×" if row["ratio"] else "—",
                     f"≤ {row['budget']}×" if row["budget"] else "—")
        holds = {True: "yes", False: "**no**", None: "—"}[row.get("holds")]
        out.append(f"| {row['title']} | " + " | ".join(cells) + f" | {holds} |")
    return "\n".join(out)


def detail_table(rows: list[dict]) -> str:
    out = ["| figure | proxy | negotiated | throughput | latency median | latency p99 | ops | errors |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if row["figure"] == IDLE:
            continue
        for proxy in PROXIES:
            p = row[proxy]
            unit = "MB/s" if row["unit"] == "GB" else "/s"
            lat = p["latency_median"]
            p99 = p["latency_p99"]
            extra = f" (reused {p['reused']})" if p.get("reused") is not None else ""
            out.append(f"| {row['figure']} | {proxy} | {', '.join(p['tls'])} | {p['throughput']:.1f} {unit} | "
                       f"{lat * 1e3:.2f} ms | {p99 * 1e3:.2f} ms | {p['ops']}{extra} | {p['errors']} |")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="mailgate vs nginx: the macro benchmark")
    parser.add_argument("--rounds", type=int, default=5, help="A/B rounds per figure (default 5)")
    parser.add_argument("--only", default="", help="comma-separated figure names (default: all)")
    parser.add_argument("--idle-connections", type=int, default=IDLE_CONNECTIONS)
    parser.add_argument("--json", default="", help="write every round's data here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    parser.add_argument("--baseline", default="", metavar="TREE",
                        help="compare with the mailgate of another source tree (built in place) "
                             "instead of nginx: an A/B of two builds")
    parser.add_argument("--observe", action="store_true",
                        help="this tree's mailgate with an access log and status_listen (scraped "
                             "each second); with --baseline . an A/B of observability on and off")
    args = parser.parse_args(argv)
    global PROXIES
    if args.baseline:
        IMPLEMENTATIONS["baseline"] = MailgateTree(Path(args.baseline))
        PROXIES = ("baseline", SUBJECT)
    names = [f.name for f in FIGURES] + [IDLE]
    if args.list:
        for f in FIGURES:
            print(f"{f.name:18s} {f.title}")
        print(f"{IDLE:18s} RSS per idle TLS connection")
        return 0
    wanted = [n.strip() for n in args.only.split(",") if n.strip()] or names
    unknown = set(wanted) - set(names)
    if unknown:
        parser.error(f"unknown figures: {sorted(unknown)} (see --list)")
    if os.geteuid() != 0:
        parser.error("needs root (Dovecot's mail processes run as nobody)")
    for component in ("dovecot", *(c for name in PROXIES for c in IMPLEMENTATIONS[name].requires)):
        if why := missing(component):
            parser.error(why)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    facts = machine_facts()
    log(json.dumps(facts))
    directory = Path(tempfile.mkdtemp(prefix="mailgate-compare-"))
    bench = Bench(directory)
    bench.observe = args.observe
    rows = []
    try:
        bench.start()
        for figure in FIGURES:
            if figure.name in wanted:
                log(f"{figure.name}: {figure.title}")
                rows.append(run_figure(bench, figure, args.rounds, log))
        if IDLE in wanted:
            log(f"{IDLE}: {args.idle_connections} connections")
            rows.append(run_idle(bench, max(1, min(args.rounds, 3)), args.idle_connections, log))
        problems = bench.check_logs()
    finally:
        bench.stop()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": facts, "rows": rows}, indent=1))
    print(f"Machine: {facts['cpu']}, {facts['cores']} cores; Linux {facts['kernel']}; "
          f"Python {facts['python']}; {facts['openssl']}; uvloop {facts['uvloop']}; {facts['nginx']}; "
          f"{facts['date']}; {args.rounds} A/B rounds, medians.\n")
    print(table(rows))
    print()
    print(detail_table(rows))
    if args.observe:
        print(f"\n--observe: {SUBJECT} wrote an access log line per session and served "
              f"{bench.scrapes} scrapes of /metrics.")
    if problems:
        print("\nProblems in the proxy logs:\n" + "\n".join(problems))
    errors = sum(row[p].get("errors") or 0 for row in rows for p in PROXIES if row["figure"] != IDLE)
    return 1 if problems or errors else 0


if __name__ == "__main__":
    sys.exit(main())
