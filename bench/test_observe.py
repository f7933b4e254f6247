"""Microbenchmarks of what observability adds per session and per scrape (issue 16).

Run:  PYTHONPATH=engine python -m pytest bench/test_observe.py --benchmark-only

* one access log line in the default format: the ``SessionRecord``, the line, the
  ``write()`` (unbuffered, as ``access_log path;``) or the append to a buffer;
* the counting a login session does whether or not anyone reads it (``WorkerStats``);
* one ``GET /metrics`` worth of work in the master: the sum over two workers' slots and
  prometheus-client's exposition.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from mailgate.config import Config
from mailgate.log import LogFiles
from mailgate.process.stats_area import StatsArea
from mailgate.process.status import metrics_registry
from mailgate.proxy.access_log import AccessLog
from mailgate.proxy.record import SessionRecord
from mailgate.proxy.stats import WorkerStats
from prometheus_client.exposition import generate_latest


def _record() -> SessionRecord:
    now = time.time()
    return SessionRecord(
        connection=7, pid=4711, protocol="imap", remote_addr="192.0.2.7", remote_port=51234,
        proxy_protocol_addr=None, server_addr="192.0.2.1", server_port=993,
        server_name="mx.test", login=b"alice", auth_status="ok", upstream_addr="10.0.0.5:143",
        upstream_connect_time=0.001, start=now - 1.5, end=now, bytes_sent=5120,
        bytes_received=310, ssl_protocol="TLSv1.3", ssl_cipher="TLS_AES_256_GCM_SHA384",
        ssl_session_reused=False, ssl_server_name=None, ssl_client_s_dn=None,
        outcome="proxied", close_reason="client_closed")


@pytest.mark.parametrize("buffer", ["", " main buffer=64k"], ids=["write", "buffered"])
def test_access_log_line(benchmark, tmp_path, buffer):
    config = Config.from_string(
        "mail { auth_http 127.0.0.1:1/a; access_log %s/access.log%s;\n"
        "server { listen 127.0.0.1:1; protocol imap; } }" % (tmp_path, buffer))
    writers: dict = {}
    log = AccessLog(config.servers[0].access_log, LogFiles(), writers)
    loop = asyncio.new_event_loop()
    try:
        # a buffered writer arms its flush timer on the running loop
        loop.run_until_complete(asyncio.sleep(0))
        benchmark(lambda: log.write(_record()))
        for writer in writers.values():
            writer.flush()
    finally:
        loop.close()


def test_session_counting(benchmark):
    stats = WorkerStats()

    def session():
        stats.session_opened("imap")
        stats.tls_handshake("TLSv1.3", False)
        stats.auth_request_started()
        stats.auth_request_done(0.002)
        stats.auth("imap", "ok")
        stats.backend_opened("10.0.0.5:143")
        stats.relay_started("imap")
        stats.to_client(5000)
        stats.to_backend(300)
        stats.backend_closed("10.0.0.5:143")
        stats.session_ended("imap", "proxied")

    benchmark(session)


def test_metrics_scrape(benchmark):
    area = StatsArea(64)
    for slot in range(2):
        area.hold(1000 + slot, slot)
        stats = WorkerStats(area.view(slot))
        for backend in ("10.0.0.5:143", "10.0.0.6:143", "10.0.0.7:110"):
            stats.backend_opened(backend)

    def facts() -> dict:
        return {"version": "bench", "pid": 1, "uptime": 1.0, "draining": False,
                "workers": [{"pid": 1000 + s, "slot": s, "rss_bytes": 1 << 25} for s in range(2)],
                "stats": area.snapshot()}

    registry = metrics_registry(facts)
    benchmark(lambda: generate_latest(registry))
