"""20,000 handshakes in one process: every SSL object is freed and the
process does not grow."""

from __future__ import annotations

import gc
import os
import ssl

import pytest
from mailgate._openssl import lib
from mailgate.tls import SessionZones

from tests.support.clients import client_context
from tests.tls.clients import memory_handshake
from tests.tls.conf import context

HANDSHAKES = 20_000
WARM_UP = 2_000


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
def test_20000_handshakes(tmp_path, pki):
    zones = SessionZones()
    body = (
        "ssl_session_cache builtin:1000 shared:SSL:1m;"
        f"ssl_verify_client optional; ssl_client_certificate {pki.ca.cert};"
    )
    ctx = context(tmp_path, pki, body, zones=zones)
    clients = [
        client_context(pki, version=ssl.TLSVersion.TLSv1_2),
        client_context(pki, version=ssl.TLSVersion.TLSv1_3),
        client_context(pki, version=ssl.TLSVersion.TLSv1_3, client_cert=pki.client),
        client_context(pki, version=ssl.TLSVersion.TLSv1_2, client_cert=pki.client_self_signed),
    ]
    sessions: list = [None] * len(clients)
    gc.collect()  # what earlier tests left behind
    conns_before = lib.mg_conn_live()
    contexts_before = lib.mg_ctx_live()
    buf = bytearray(4096)
    resumed = 0

    for i in range(HANDSHAKES):
        if i == WARM_UP:
            gc.collect()
            baseline = rss()
        k = i % len(clients)
        # every other round resumes the client's first session
        session = sessions[k] if (i // len(clients)) % 2 else None
        server, client = memory_handshake(ctx, clients[k], session=session)
        resumed += server.session_reused
        check = server.check_client_certificate()
        server.client_certificate()
        if check.ok:
            client.write(b"ping")
            server.feed(client.outgoing.read())
            assert server.recv_into(buf) == 4
            client.incoming.write(bytes(server.encrypt(b"pong")))
        server.shutdown()
        client.incoming.write(bytes(server.data_to_send()))
        if sessions[k] is None:
            # once per client: CPython's SSLObject.session leaks a copy per call
            sessions[k] = client.session
        server.close()

    gc.collect()
    assert lib.mg_conn_live() == conns_before
    assert lib.mg_ctx_live() == contexts_before
    assert resumed > HANDSHAKES // 4
    growth = rss() - baseline
    assert growth < 8 * 1024 * 1024, f"RSS grew by {growth} bytes"
    stats = zones["SSL"].stats()
    assert stats.count <= stats.capacity
