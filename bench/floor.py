"""The floor of a resumed TLS connection in this design, next to mailgate's session.

    python bench/floor.py [--count 2000] [--rounds 3] [--tls 1.2]

One process runs the embedded proxy (one implicit-TLS IMAP server, shared session
cache, tickets off) and, on a second port, a minimal uvloop ``BufferedProtocol`` on
the same ``TLSStream`` and TLS context that only feeds, handshakes, writes a fixed
greeting and closes: no session, no protocol machine, no timeout, no log.  The load
generator resumes sessions against each port in turn (2,000 connections a run,
alternating); the figure is this process's CPU per connection (scheduler run time;
the load generator is another process).  The difference between the two is what the
session costs over the bare minimum of Python + uvloop + cffi per connection
(bench/RESULTS.md, "What is left").  Loopback only; every run bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support
if any((ROOT / "engine" / "mailgate").glob("_openssl*.so")):
    sys.path.insert(0, str(ROOT / "engine"))  # a tree built in place; else the installed package

import uvloop
from mailgate import Config
from mailgate.proxy.mailproxy import MailProxy
from mailgate.tls import TLSStream

from tests.support.certs import make_pki
from tests.support.ports import PortAllocator

GREETING = b"* OK IMAP4 ready\r\n"


class Minimal(asyncio.BufferedProtocol):
    """Handshake, greet, close: what any Python protocol on this TLS layer must do."""

    def __init__(self, context):
        self.context = context
        self.transport = None
        self.tls = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.tls = TLSStream(self.context)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.tls.input

    def buffer_updated(self, nbytes: int) -> None:
        tls = self.tls
        if tls.handshake_done:
            tls.feed_input(nbytes)  # nothing is expected after the greeting
            return
        if tls.do_handshake(nbytes):
            self.transport.write(tls.encrypt(GREETING))
        else:
            self.transport.write(tls.data_to_send())

    def eof_received(self) -> None:
        self.tls.abort()

    def connection_lost(self, exc) -> None:
        self.tls.close()


def _cpu() -> float:
    with open("/proc/self/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


async def _load(args, port: int, ca: Path, count: int, misses: int = 0) -> None:
    """``count`` resumptions by bench/loadgen.py; all but ``misses`` must reuse."""
    argv = [sys.executable, str(ROOT / "bench" / "loadgen.py"), "resume", "--port", str(port),
            "--ca", str(ca), "--tls", args.tls, "--count", str(count), "--duration", "60",
            "--concurrency", "1"]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    result = json.loads(out.decode().strip().splitlines()[-1])
    if result.get("errors") or result.get("reused", 0) < count - misses:
        raise RuntimeError(f"load on port {port} failed: {result}")


async def _main(args) -> None:
    directory = Path(tempfile.mkdtemp(prefix="mailgate-floor-"))
    pki = make_pki(directory / "pki")
    ports = PortAllocator()
    session_port, minimal_port = ports.port(), ports.port()
    config = Config.from_string(f"""
        error_log {directory}/error.log notice;
        mail {{
            auth_http 127.0.0.1:9/auth;
            ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384;
            ssl_certificate {pki.server_ecdsa.cert};
            ssl_certificate_key {pki.server_ecdsa.key_file};
            ssl_session_cache shared:FLOOR:1m; ssl_session_tickets off;
            server {{ listen 127.0.0.1:{session_port} ssl; protocol imap; }}
        }}
    """, prefix=str(directory))
    async with MailProxy(config) as proxy:
        (listener,) = proxy.listeners
        context = listener.route(None).tls
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Minimal(context), "127.0.0.1", minimal_port)
        gc.freeze()
        runs = {"session": [], "minimal": []}
        targets = (("session", session_port), ("minimal", minimal_port))
        for _, port in targets:  # warm-up
            await _load(args, port, pki.ca.cert, 100)
        for round_number in range(args.rounds * 2):
            for name, port in targets if round_number % 2 == 0 else targets[::-1]:
                started = _cpu()
                await _load(args, port, pki.ca.cert, args.count)
                runs[name].append((_cpu() - started) / args.count * 1e6)
        server.close()
    session, minimal = (statistics.median(runs[name]) for name in ("session", "minimal"))
    print(f"resumed TLS {args.tls}, {args.count} connections × {args.rounds * 2} runs each, "
          f"CPU per connection (median):")
    print(f"  mailgate session  {session:7.1f} µs   (runs {min(runs['session']):.1f}–{max(runs['session']):.1f})")
    print(f"  minimal protocol  {minimal:7.1f} µs   (runs {min(runs['minimal']):.1f}–{max(runs['minimal']):.1f})")
    print(f"  session / minimal {session / minimal:7.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="connections per run")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs per target")
    parser.add_argument("--tls", choices=("1.2", "1.3"), default="1.2")
    args = parser.parse_args(argv)
    uvloop.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
