"""The counters of one worker: sessions, logins, TLS handshakes, bytes, backend errors.

Every counter is a 64-bit unsigned integer at a fixed index of one array, so that
counting costs one indexed add on the hot path (no lock, no object per event), and
the array can live in memory the master shares with its workers: ``WorkerStats``
takes any writable buffer of ``WorkerStats.SIZE`` bytes.  Gauges (sessions active,
backend and auth_http connections open) are kept as two counters, opened and closed,
so that a gauge never needs a decrement and the sum over workers stays right.
Each backend (``upstream`` address) has its own entry in a table of ``BACKEND_ENTRIES``
after the counters: its name (bytes) and its sessions, closed connections and errors;
entries are taken in the order backends are first used (the last one, ``other``, takes
every backend beyond).  A process writes only its own buffer: the master (or the status
page) reads every worker's and sums them, with no lock on either side.

``snapshot()`` gives the values as plain dicts, labels as keys, for the metrics
exposition, the status page and the embedding API (``MailProxy.stats()``);
``add()`` sums snapshots (several workers).
"""

from __future__ import annotations

from itertools import product
from typing import Any

__all__ = ["AUTH_RESULTS", "AUTH_HTTP_BUCKETS", "BACKEND_ERRORS", "DIRECTIONS", "OUTCOMES",
           "PROTOCOLS", "TLS_VERSIONS", "WorkerStats", "add"]

PROTOCOLS = ("imap", "pop3", "smtp")
OUTCOMES = (
    "proxied",         # logged in to the backend, relayed, ended
    "auth_failed",     # the auth service refused the login (and the client left)
    "auth_error",      # the auth service failed: unreachable, timed out, bad answer
    "backend_error",   # the backend could not be reached or refused the login
    "client_closed",   # the client left before logging in
    "timeout",         # the client said nothing in time
    "rejected",        # the proxy ended it: invalid commands, certificate, TLS failure
    "shutdown",        # ended by the proxy stopping
    "lost",            # its worker process died (counted by the master when it reaps it)
)
AUTH_RESULTS = ("ok", "failed", "error", "wait")
TLS_VERSIONS = ("TLSv1.2", "TLSv1.3", "other")
DIRECTIONS = ("client_to_backend", "backend_to_client")
BACKEND_ERRORS = ("connect", "timeout", "closed", "invalid_response", "tls")
AUTH_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the auth request duration histogram; one more, +Inf."""
BACKEND_ENTRIES = 64
"""Backends counted apart in one worker; the last entry counts the rest as ``other``."""
_NAME_SIZE = 64  # an upstream address, "[ffff:...]:65535" at most, NUL-padded
_BACKEND_FIELDS = 3  # sessions, closed, errors


class _Layout:
    """Name (and labels) → index of every counter, in one fixed order."""

    def __init__(self) -> None:
        self.index: dict[tuple, int] = {}

    def add(self, name: str, *labels: tuple[str, ...]) -> None:
        for key in product(*labels) if labels else [()]:
            self.index[(name, *key)] = len(self.index)


_LAYOUT = _Layout()
_LAYOUT.add("sessions_opened", PROTOCOLS)
_LAYOUT.add("relays", PROTOCOLS, ("started", "ended"))  # sessions in the relay: a gauge
_LAYOUT.add("sessions", PROTOCOLS, OUTCOMES)
_LAYOUT.add("auth", PROTOCOLS, AUTH_RESULTS)
_LAYOUT.add("tls_handshakes", TLS_VERSIONS, ("full", "resumed"))
_LAYOUT.add("bytes", DIRECTIONS)
_LAYOUT.add("backend_errors", BACKEND_ERRORS)
_LAYOUT.add("backend_connections", ("opened", "closed"))
_LAYOUT.add("auth_connections", ("opened", "closed"))
_LAYOUT.add("auth_http_duration_bucket", tuple(range(len(AUTH_HTTP_BUCKETS) + 1)))
_LAYOUT.add("auth_http_duration_microseconds")
_INDEX = _LAYOUT.index

# the indexes the hot paths use, computed once
_OPENED = {p: _INDEX[("sessions_opened", p)] for p in PROTOCOLS}
_RELAY_STARTED = {p: _INDEX[("relays", p, "started")] for p in PROTOCOLS}
_RELAY_ENDED = {p: _INDEX[("relays", p, "ended")] for p in PROTOCOLS}
_ENDED = {(p, o): _INDEX[("sessions", p, o)] for p in PROTOCOLS for o in OUTCOMES}
_AUTH = {(p, r): _INDEX[("auth", p, r)] for p in PROTOCOLS for r in AUTH_RESULTS}
_HANDSHAKE = {(v, r): _INDEX[("tls_handshakes", v, "resumed" if r else "full")]
              for v in TLS_VERSIONS for r in (False, True)}
_TO_BACKEND = _INDEX[("bytes", "client_to_backend")]
_TO_CLIENT = _INDEX[("bytes", "backend_to_client")]
_BACKEND_ERROR = {r: _INDEX[("backend_errors", r)] for r in BACKEND_ERRORS}
_BACKEND_OPENED = _INDEX[("backend_connections", "opened")]
_BACKEND_CLOSED = _INDEX[("backend_connections", "closed")]
_AUTH_OPENED = _INDEX[("auth_connections", "opened")]
_AUTH_CLOSED = _INDEX[("auth_connections", "closed")]
_BUCKET = [_INDEX[("auth_http_duration_bucket", i)] for i in range(len(AUTH_HTTP_BUCKETS) + 1)]
_DURATION_SUM = _INDEX[("auth_http_duration_microseconds",)]


_BACKENDS = len(_INDEX)  # where the backend table's counters start
_COUNTS = _BACKENDS + BACKEND_ENTRIES * _BACKEND_FIELDS
_OTHER = b"other"


class WorkerStats:
    """The counters of one worker, in ``buffer`` (``SIZE`` bytes) or memory of its own.

    A buffer that already holds counts (a worker respawned into the slot of one that
    ended) is counted on from where it is, its backend entries included.
    """

    SIZE = 8 * _COUNTS + _NAME_SIZE * BACKEND_ENTRIES
    __slots__ = ("_backends", "_counts", "_names")

    def __init__(self, buffer: Any = None) -> None:
        memory = memoryview(buffer if buffer is not None else bytearray(self.SIZE))
        if memory.nbytes != self.SIZE:
            raise ValueError("the stats need %d bytes, not %d" % (self.SIZE, memory.nbytes))
        memory = memory.cast("B")
        self._counts = memory[:8 * _COUNTS].cast("Q")
        self._names = memory[8 * _COUNTS:]
        # backend name -> entry, of the entries in use (a process-local index)
        self._backends: dict[str, int] = {}
        for entry, name in enumerate(self._entry_names()):
            if name:
                self._backends[name] = entry

    def _entry_names(self) -> list[str]:
        names = self._names
        return [bytes(names[i * _NAME_SIZE:(i + 1) * _NAME_SIZE]).rstrip(b"\0").decode("ascii", "replace")
                for i in range(BACKEND_ENTRIES)]

    def _backend(self, upstream: str) -> int:
        """The first counter of ``upstream``'s entry (taken now if it is new)."""
        entry = self._backends.get(upstream)
        if entry is None:
            entry = len(self._backends)
            if entry >= BACKEND_ENTRIES - 1:  # the last entry is "other"
                entry = BACKEND_ENTRIES - 1
                upstream = _OTHER.decode()
            name = upstream.encode("ascii", "replace")[:_NAME_SIZE]
            self._names[entry * _NAME_SIZE:entry * _NAME_SIZE + len(name)] = name
            self._backends[upstream] = entry
        return _BACKENDS + entry * _BACKEND_FIELDS

    # -- counting (the hot paths) ----------------------------------------------------

    def session_opened(self, protocol: str) -> None:
        self._counts[_OPENED[protocol]] += 1

    def session_ended(self, protocol: str, outcome: str) -> None:
        counts = self._counts
        counts[_ENDED[protocol, outcome]] += 1
        if outcome == "proxied":  # it was relaying
            counts[_RELAY_ENDED[protocol]] += 1

    def relay_started(self, protocol: str) -> None:
        self._counts[_RELAY_STARTED[protocol]] += 1

    def auth(self, protocol: str, result: str) -> None:
        self._counts[_AUTH[protocol, result]] += 1

    def tls_handshake(self, version: str, resumed: bool) -> None:
        if version not in ("TLSv1.2", "TLSv1.3"):
            version = "other"
        self._counts[_HANDSHAKE[version, resumed]] += 1

    def to_backend(self, nbytes: int) -> None:
        self._counts[_TO_BACKEND] += nbytes

    def to_client(self, nbytes: int) -> None:
        self._counts[_TO_CLIENT] += nbytes

    def backend_error(self, reason: str, upstream: str) -> None:
        counts = self._counts
        counts[_BACKEND_ERROR[reason]] += 1
        counts[self._backend(upstream) + 2] += 1

    def backend_opened(self, upstream: str) -> None:
        counts = self._counts
        counts[_BACKEND_OPENED] += 1
        counts[self._backend(upstream)] += 1

    def backend_closed(self, upstream: str) -> None:
        counts = self._counts
        counts[_BACKEND_CLOSED] += 1
        counts[self._backend(upstream) + 1] += 1

    def auth_request_started(self) -> None:
        self._counts[_AUTH_OPENED] += 1

    def auth_request_done(self, seconds: float) -> None:
        counts = self._counts
        counts[_AUTH_CLOSED] += 1
        counts[_DURATION_SUM] += int(seconds * 1_000_000)
        for bound, index in zip(AUTH_HTTP_BUCKETS, _BUCKET):
            if seconds <= bound:
                counts[index] += 1
                return
        counts[_BUCKET[-1]] += 1

    # -- gauges ------------------------------------------------------------------------

    @property
    def backend_connections(self) -> int:
        """Backend connections open now."""
        return self._counts[_BACKEND_OPENED] - self._counts[_BACKEND_CLOSED]

    @property
    def auth_connections(self) -> int:
        """auth_http requests in flight now."""
        return self._counts[_AUTH_OPENED] - self._counts[_AUTH_CLOSED]

    def settle(self) -> None:
        """The worker writing here has died: what it had open ends now (its sessions as
        ``lost``), so that the gauges summed over workers stay right.  Only the master
        calls it, for a worker it has reaped (no one else writes here then)."""
        counts = self._counts
        for protocol in PROTOCOLS:
            ended = sum(counts[_ENDED[protocol, o]] for o in OUTCOMES)
            counts[_ENDED[protocol, "lost"]] += counts[_OPENED[protocol]] - ended
            counts[_RELAY_ENDED[protocol]] = counts[_RELAY_STARTED[protocol]]
        counts[_BACKEND_CLOSED] = counts[_BACKEND_OPENED]
        counts[_AUTH_CLOSED] = counts[_AUTH_OPENED]
        for entry in self._backends.values():
            base = _BACKENDS + entry * _BACKEND_FIELDS
            counts[base + 1] = counts[base]

    # -- reading ------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Every value, as plain dicts and ints (a copy: it does not change later)."""
        counts = self._counts.tolist()
        value = {key: counts[index] for key, index in _INDEX.items()}
        backends = {}
        for entry, name in enumerate(self._entry_names()):
            if name:
                base = _BACKENDS + entry * _BACKEND_FIELDS
                backends[name] = {"sessions": counts[base],
                                  "active": counts[base] - counts[base + 1],
                                  "errors": counts[base + 2]}
        opened = {p: value["sessions_opened", p] for p in PROTOCOLS}
        ended = {(p, o): value["sessions", p, o] for p in PROTOCOLS for o in OUTCOMES}
        buckets = [value["auth_http_duration_bucket", i] for i in range(len(AUTH_HTTP_BUCKETS) + 1)]
        return {
            "sessions": {p: {o: ended[p, o] for o in OUTCOMES} for p in PROTOCOLS},
            "sessions_active": {p: opened[p] - sum(ended[p, o] for o in OUTCOMES)
                                for p in PROTOCOLS},
            # of the active sessions, those relaying (the others are logging in)
            "sessions_relaying": {p: value["relays", p, "started"] - value["relays", p, "ended"]
                                  for p in PROTOCOLS},
            "auth": {p: {r: value["auth", p, r] for r in AUTH_RESULTS} for p in PROTOCOLS},
            "tls_handshakes": {v: {k: value["tls_handshakes", v, k] for k in ("full", "resumed")}
                               for v in TLS_VERSIONS},
            "bytes": {d: value["bytes", d] for d in DIRECTIONS},
            "backend_errors": {r: value["backend_errors", r] for r in BACKEND_ERRORS},
            "backend_connections": (value["backend_connections", "opened"]
                                    - value["backend_connections", "closed"]),
            "auth_http_in_flight": (value["auth_connections", "opened"]
                                    - value["auth_connections", "closed"]),
            "backends": backends,
            "auth_http_duration": {
                # cumulative, as Prometheus histograms count: requests <= each bound
                "buckets": dict(zip(AUTH_HTTP_BUCKETS + (float("inf"),),
                                    _cumulative(buckets))),
                "count": sum(buckets),
                "sum": value["auth_http_duration_microseconds",] / 1_000_000,
            },
        }


def _cumulative(values: list[int]) -> list[int]:
    total, out = 0, []
    for value in values:
        total += value
        out.append(total)
    return out


def add(a: dict, b: dict) -> dict:
    """The sum of two snapshots (e.g. of two workers); a key only one of them has (a
    backend only one worker used) is taken as it is."""
    if isinstance(a, dict):
        return {key: add(a[key], b[key]) if key in a and key in b else a.get(key, b.get(key))
                for key in {**a, **b}}
    return a + b
