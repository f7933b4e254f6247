"""The shared-memory session store and the zone registry, directly."""

from __future__ import annotations

import os
import ssl
import time

import pytest
from mailgate._openssl import lib
from mailgate.tls import ConfigError, SessionZone, SessionZones, build_contexts

from tests.support.clients import client_context
from tests.support.configs import certificates
from tests.tls.clients import memory_handshake
from tests.tls.conf import load

NOW = 1_800_000_000


def sid(i: int) -> bytes:
    return i.to_bytes(4, "big") * 8  # 32 bytes, like OpenSSL's IDs


def test_put_get_remove():
    zone = SessionZone("Z", 64 * 1024)
    assert zone.get(sid(1), NOW) is None
    assert zone.put(sid(1), b"der one", NOW + 10, NOW)
    assert zone.get(sid(1), NOW) == b"der one"
    assert zone.put(sid(1), b"der again", NOW + 10, NOW)  # same ID: replaced
    assert zone.get(sid(1), NOW) == b"der again"
    assert zone.stats().count == 1
    assert zone.remove(sid(1)) and not zone.remove(sid(1))
    assert zone.get(sid(1), NOW) is None


def test_large_der_spans_chunks():
    zone = SessionZone("Z", 64 * 1024)
    der = os.urandom(4096)
    assert zone.put(b"id", der, NOW + 10, NOW)
    assert zone.get(b"id", NOW) == der


def test_what_is_never_cached():
    zone = SessionZone("Z", 64 * 1024)
    assert not zone.put(sid(1) + b"x", b"der", NOW + 10, NOW)  # ID over 32 bytes
    assert not zone.put(sid(1), os.urandom(4097), NOW + 10, NOW)  # DER over nginx's 4096
    assert not zone.put(b"", b"der", NOW + 10, NOW)
    assert zone.stats().count == 0


def test_expiry():
    zone = SessionZone("Z", 64 * 1024)
    zone.put(sid(1), b"der", NOW + 5, NOW)
    assert zone.get(sid(1), NOW + 4) == b"der"
    assert zone.get(sid(1), NOW + 5) is None  # dropped on lookup
    stats = zone.stats()
    assert (stats.count, stats.expired) == (0, 1)


def test_about_4000_sessions_per_mib():
    zone = SessionZone("Z", 1024 * 1024)
    assert 3900 <= zone.stats().capacity <= 4200


def test_the_oldest_makes_room():
    zone = SessionZone("Z", 32 * 1024)
    capacity = zone.stats().capacity
    for i in range(capacity + 10):
        assert zone.put(sid(i), b"d" * 100, NOW + 300, NOW)
    stats = zone.stats()
    assert (stats.count, stats.evicted) == (capacity, 10)
    assert zone.get(sid(9), NOW) is None
    assert zone.get(sid(10), NOW) == b"d" * 100
    assert zone.get(sid(capacity + 9), NOW) == b"d" * 100


def test_expired_entries_go_first():
    zone = SessionZone("Z", 32 * 1024)
    capacity = zone.stats().capacity
    zone.put(sid(0), b"old", NOW + 1, NOW)
    for i in range(1, capacity + 1):
        zone.put(sid(i), b"new", NOW + 300, NOW + 2)
    stats = zone.stats()
    assert (stats.expired, stats.evicted) == (1, 0)


def test_failure_and_its_warning_once_a_second():
    zone = SessionZone("Z", 32 * 1024)
    for i in range(zone.stats().capacity):
        zone.put(sid(i), b"small", NOW + 300, NOW)
    big = os.urandom(4096)

    def put(now):
        return lib.mg_zone_put(zone._zone, b"big", 3, big, len(big), now + 300, now)

    # dropping the oldest one-chunk entry does not make room for 24 chunks
    assert put(NOW) == lib.MG_ZONE_FAILED_WARN
    assert put(NOW) == lib.MG_ZONE_FAILED
    assert put(NOW + 1) == lib.MG_ZONE_FAILED_WARN
    assert zone.stats().failed == 3


def test_shared_between_processes():
    zone = SessionZone("Z", 1024 * 1024)
    pids = []
    for worker in range(2):
        pid = os.fork()
        if pid == 0:
            try:
                for i in range(2000):
                    zone.put(sid(worker * 100_000 + i), b"w%d-%d" % (worker, i), NOW + 300, NOW)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    assert zone.stats().count == 4000
    assert zone.get(sid(1999), NOW) == b"w0-1999"
    assert zone.get(sid(100_000), NOW) == b"w1-0"


# ---- the registry ---------------------------------------------------------------------

def test_registry_follows_reloads(tmp_path, pki):
    def config(cache: str):
        return load(tmp_path, certificates(pki, "ecdsa") + cache)

    zones = SessionZones()
    zones.configure(config("ssl_session_cache shared:A:1m;"))
    a = zones["A"]
    a.put(b"id", b"der", int(time.time()) + 60)

    zones.configure(config("ssl_session_cache shared:A:1m;"))
    assert zones["A"] is a and a.get(b"id") == b"der"

    zones.configure(config("ssl_session_cache shared:B:1m;"))
    assert "A" not in zones and zones["B"].size == 1024 * 1024
    assert a._zone is None  # released in this process
    assert len(zones) == 1 and [z.name for z in zones] == ["B"]


def test_zone_outlives_the_registry_while_a_context_uses_it(tmp_path, pki):
    """Closing the registry (say, after a reload) unmaps nothing that a
    context still uses: the context holds its own reference."""
    config = load(tmp_path, certificates(pki, "ecdsa") + "ssl_session_cache shared:A:1m; ssl_session_tickets off;")
    zones = SessionZones()
    zones.configure(config)
    (ctx,) = build_contexts(config, zones)
    zones.close()
    client = client_context(pki, version=ssl.TLSVersion.TLSv1_2)
    server, first = memory_handshake(ctx, client)
    server.shutdown()
    server.close()
    server, _ = memory_handshake(ctx, client, session=first.session)
    assert server.session_reused
    server.close()


def test_mapping_failure_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^mmap\(MAP_ANON\|MAP_SHARED, 16\) failed \(22: "):
        SessionZone("Z", 16)
