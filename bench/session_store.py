"""CPU per resumed TLS 1.2 handshake through ``ssl_session_store`` (Redis), next to the
shared-memory session cache.

    python bench/session_store.py [--count 2000] [--rounds 3]

One process runs the embedded proxy (uvloop) with three implicit-TLS IMAP servers, tickets
off, on the same certificate:

* ``shared``: ``ssl_session_cache shared:...``, no store: every resumption is a zone hit;
* ``redis``: ``ssl_session_cache none`` and the store: every resumption misses locally,
  pauses the handshake, is fetched from Redis, unsealed and resumed;
* ``shared+redis``: both: a zone hit, the store configured but not asked.

A private redis-server runs on loopback.  The load generator (bench/loadgen.py,
another process) resumes sessions against each port in turn; the figures are this
process's CPU per connection (scheduler run time) and redis-server's (utime + stime
from /proc), medians of the runs.  Loopback only; every run bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support, bench
if any((ROOT / "engine" / "mailgate").glob("_openssl*.so")):
    sys.path.insert(0, str(ROOT / "engine"))  # a tree built in place; else the installed package

import uvloop
from mailgate import Config
from mailgate.proxy.mailproxy import MailProxy

from bench.floor import _cpu, _load
from tests.support.certs import make_pki
from tests.support.ports import PortAllocator
from tests.support.redis_server import RedisServer

TARGETS = ("shared", "redis", "shared+redis")
# The load generator resumes its first session right after the full handshake that
# made it, a millisecond later, maybe before the session's write reached Redis.
MISSES = 1


def _process_cpu(pid: int) -> float:
    """utime + stime of ``pid`` in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _main(args) -> None:
    directory = Path(tempfile.mkdtemp(prefix="mailgate-store-bench-"))
    pki = make_pki(directory / "pki")
    ports = PortAllocator()
    redis = RedisServer(directory / "redis", ports)
    redis.start()
    key = directory / "store.key"
    key.write_bytes(os.urandom(64))
    port = {name: ports.port() for name in TARGETS}
    store = f"ssl_session_store {redis.url} timeout=200ms; ssl_session_store_key {key};"
    config = Config.from_string(f"""
        error_log {directory}/error.log notice;
        mail {{
            auth_http 127.0.0.1:9/auth;
            ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384;
            ssl_certificate {pki.server_ecdsa.cert};
            ssl_certificate_key {pki.server_ecdsa.key_file};
            ssl_session_tickets off; ssl_session_timeout 10m;
            server {{ listen 127.0.0.1:{port["shared"]} ssl; protocol imap;
                     ssl_session_cache shared:ZONE:10m; }}
            server {{ listen 127.0.0.1:{port["redis"]} ssl; protocol imap;
                     ssl_session_cache none; {store} }}
            server {{ listen 127.0.0.1:{port["shared+redis"]} ssl; protocol imap;
                     ssl_session_cache shared:ZONE2:10m; {store} }}
        }}
    """, prefix=str(directory))
    runs: dict[str, list[float]] = {name: [] for name in TARGETS}
    redis_runs: dict[str, list[float]] = {name: [] for name in TARGETS}
    try:
        async with MailProxy(config):
            gc.freeze()
            for name in TARGETS:  # warm-up
                await _load(args, port[name], pki.ca.cert, 100, MISSES)
            for round_number in range(args.rounds * 2):
                order = TARGETS if round_number % 2 == 0 else TARGETS[::-1]
                for name in order:
                    started, redis_started = _cpu(), _process_cpu(redis.process.pid)
                    await _load(args, port[name], pki.ca.cert, args.count, MISSES)
                    runs[name].append((_cpu() - started) / args.count * 1e6)
                    redis_runs[name].append(
                        (_process_cpu(redis.process.pid) - redis_started) / args.count * 1e6)
    finally:
        redis.stop()
    print(f"resumed TLS {args.tls}, {args.count} connections × {args.rounds * 2} runs each, "
          f"CPU per connection (median; runs min–max):")
    for name in TARGETS:
        cpu, rcpu = statistics.median(runs[name]), statistics.median(redis_runs[name])
        print(f"  {name:13s} mailgate {cpu:6.1f} µs ({min(runs[name]):.1f}–{max(runs[name]):.1f})"
              f"   redis-server {rcpu:5.1f} µs")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="connections per run")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs per target")
    args = parser.parse_args(argv)
    args.tls = "1.2"
    uvloop.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
