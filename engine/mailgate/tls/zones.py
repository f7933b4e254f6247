"""Shared TLS session cache zones (``ssl_session_cache shared:NAME:SIZE``).

A zone is an anonymous shared mapping created in the master process before
the workers fork, so every worker sees the same sessions; its C side
(include/csrc/zone.c) is what the OpenSSL session hooks use during
handshakes.  ``SessionZones`` is the master's registry: it creates the zones
a configuration declares and, across a reload, keeps a zone (and the
sessions and ticket keys in it) when its name and size are unchanged.

The store interface is deliberately narrow, get/put/remove by session ID with
an absolute expiry, so that another store (Redis, for several machines) can
stand beside the shared-memory one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from mailgate.config.lexer import ENCODING
from mailgate.tls._binding import ffi, lib
from mailgate.tls.errors import ConfigError

__all__ = ["SessionZone", "SessionZones", "ZoneStats"]


@dataclass(frozen=True)
class ZoneStats:
    """Counters of a zone, shared by all processes using it."""

    size: int
    capacity: int  #: sessions that fit when each DER fits one chunk
    count: int
    stored: int
    hits: int
    misses: int
    expired: int
    evicted: int  #: dropped before expiry to make room
    failed: int  #: could not be stored at all


class SessionZone:
    """One shared-memory session store.

    Entries are keyed by session ID (1 to 32 bytes) and hold a session's DER
    (at most 4096 bytes, nginx's limit) until an absolute expiry time in
    seconds since the epoch.  When the zone is full the oldest entry makes
    room.  Usable from any process forked after it was created.
    """

    __slots__ = ("_zone", "name", "size")

    def __init__(self, name: str, size: int):
        # the name's bytes as read (a configuration's invalid UTF-8 is kept as surrogates)
        zone = lib.mg_zone_create(name.encode(*ENCODING), size)
        if zone == ffi.NULL:
            err = ffi.errno
            raise ConfigError(
                f"mmap(MAP_ANON|MAP_SHARED, {size}) failed ({err}: {os.strerror(err)})"
            )
        self.name = name
        self.size = size
        self._zone = ffi.gc(zone, lib.mg_zone_release)

    def __repr__(self) -> str:
        return f"<SessionZone {self.name!r} {self.size}>"

    def put(self, session_id: bytes, der: bytes, expire: int, now: int | None = None) -> bool:
        """Store a session until ``expire``; False when it cannot be stored."""
        now = int(time.time()) if now is None else now
        rc = lib.mg_zone_put(self._zone, session_id, len(session_id), der, len(der), expire, now)
        return rc == lib.MG_ZONE_STORED

    def get(self, session_id: bytes, now: int | None = None) -> bytes | None:
        """The DER of an unexpired session, or None (an expired one is dropped)."""
        now = int(time.time()) if now is None else now
        buf = ffi.new("unsigned char[]", lib.MG_SESSION_DER_MAX)
        n = lib.mg_zone_get(self._zone, session_id, len(session_id), buf, len(buf), now)
        return ffi.buffer(buf, n)[:] if n else None

    def remove(self, session_id: bytes) -> bool:
        """Drop a session; False when it was not there."""
        return bool(lib.mg_zone_remove(self._zone, session_id, len(session_id)))

    def stats(self) -> ZoneStats:
        s = ffi.new("mg_zone_stats *")
        lib.mg_zone_get_stats(self._zone, s)
        return ZoneStats(
            size=s.size, capacity=s.capacity, count=s.count, stored=s.stored, hits=s.hits,
            misses=s.misses, expired=s.expired, evicted=s.evicted, failed=s.failed,
        )

    def close(self) -> None:
        """Unmap the zone in this process (other processes keep theirs)."""
        if self._zone is not None:
            ffi.release(self._zone)
            self._zone = None


class SessionZones:
    """The registry of shared zones by name, kept by the master process.

    ``configure(config)`` is called before the workers fork, at start and at
    every reload.  A zone whose name and size are unchanged is kept, with its
    sessions and ticket keys; a zone whose size changed is replaced; a zone
    no longer declared is released.  When a zone cannot be created nothing
    changes.  (A name declared with two sizes is refused by the
    configuration itself.)
    """

    def __init__(self) -> None:
        self._zones: dict[str, SessionZone] = {}

    def configure(self, config) -> None:
        """Make the zones of ``config`` (``Config.shared_zones``) the current set."""
        zones: dict[str, SessionZone] = {}
        try:
            for declared in config.shared_zones:
                old = self._zones.get(declared.name)
                if old is not None and old.size == declared.size:
                    zones[declared.name] = old
                else:
                    zones[declared.name] = SessionZone(declared.name, declared.size)
        except ConfigError:
            for name, zone in zones.items():
                if self._zones.get(name) is not zone:
                    zone.close()
            raise

        for name, zone in self._zones.items():
            if zones.get(name) is not zone:
                zone.close()
        self._zones = zones

    def __getitem__(self, name: str) -> SessionZone:
        return self._zones[name]

    def get(self, name: str) -> SessionZone | None:
        return self._zones.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._zones

    def __iter__(self) -> Iterator[SessionZone]:
        return iter(self._zones.values())

    def __len__(self) -> int:
        return len(self._zones)

    def close(self) -> None:
        """Release every zone in this process."""
        for zone in self._zones.values():
            zone.close()
        self._zones = {}
