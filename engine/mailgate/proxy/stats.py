"""The counters of one worker: sessions, logins, TLS handshakes, bytes, backend errors.

Every counter is a 64-bit unsigned integer at a fixed index of one array, so that
counting costs one indexed add on the hot path (no lock, no object per event), and
the array can live in memory the master shares with its workers: ``WorkerStats``
takes any writable buffer of ``WorkerStats.SIZE`` bytes.  Gauges (sessions active,
backend and auth_http connections open) are kept as two counters, opened and closed,
so that a gauge never needs a decrement and the sum over workers stays right.

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
)
AUTH_RESULTS = ("ok", "failed", "error", "wait")
TLS_VERSIONS = ("TLSv1.2", "TLSv1.3", "other")
DIRECTIONS = ("client_to_backend", "backend_to_client")
BACKEND_ERRORS = ("connect", "timeout", "closed", "invalid_response", "tls")
AUTH_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the auth request duration histogram; one more, +Inf."""


class _Layout:
    """Name (and labels) → index of every counter, in one fixed order."""

    def __init__(self) -> None:
        self.index: dict[tuple, int] = {}

    def add(self, name: str, *labels: tuple[str, ...]) -> None:
        for key in product(*labels) if labels else [()]:
            self.index[(name, *key)] = len(self.index)


_LAYOUT = _Layout()
_LAYOUT.add("sessions_opened", PROTOCOLS)
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


class WorkerStats:
    """The counters of one worker, in ``buffer`` (``SIZE`` bytes) or memory of its own."""

    SIZE = 8 * len(_INDEX)
    __slots__ = ("_counts",)

    def __init__(self, buffer: Any = None) -> None:
        memory = memoryview(buffer if buffer is not None else bytearray(self.SIZE))
        if memory.nbytes != self.SIZE:
            raise ValueError("the stats need %d bytes, not %d" % (self.SIZE, memory.nbytes))
        self._counts = memory.cast("B").cast("Q")

    # -- counting (the hot paths) ----------------------------------------------------

    def session_opened(self, protocol: str) -> None:
        self._counts[_OPENED[protocol]] += 1

    def session_ended(self, protocol: str, outcome: str) -> None:
        self._counts[_ENDED[protocol, outcome]] += 1

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

    def backend_error(self, reason: str) -> None:
        self._counts[_BACKEND_ERROR[reason]] += 1

    def backend_opened(self) -> None:
        self._counts[_BACKEND_OPENED] += 1

    def backend_closed(self) -> None:
        self._counts[_BACKEND_CLOSED] += 1

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

    # -- reading ------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Every value, as plain dicts and ints (a copy: it does not change later)."""
        counts = self._counts.tolist()
        value = {key: counts[index] for key, index in _INDEX.items()}
        opened = {p: value["sessions_opened", p] for p in PROTOCOLS}
        ended = {(p, o): value["sessions", p, o] for p in PROTOCOLS for o in OUTCOMES}
        buckets = [value["auth_http_duration_bucket", i] for i in range(len(AUTH_HTTP_BUCKETS) + 1)]
        return {
            "sessions": {p: {o: ended[p, o] for o in OUTCOMES} for p in PROTOCOLS},
            "sessions_active": {p: opened[p] - sum(ended[p, o] for o in OUTCOMES)
                                for p in PROTOCOLS},
            "auth": {p: {r: value["auth", p, r] for r in AUTH_RESULTS} for p in PROTOCOLS},
            "tls_handshakes": {v: {k: value["tls_handshakes", v, k] for k in ("full", "resumed")}
                               for v in TLS_VERSIONS},
            "bytes": {d: value["bytes", d] for d in DIRECTIONS},
            "backend_errors": {r: value["backend_errors", r] for r in BACKEND_ERRORS},
            "backend_connections": (value["backend_connections", "opened"]
                                    - value["backend_connections", "closed"]),
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
    """The sum of two snapshots (e.g. of two workers), of the same shape."""
    if isinstance(a, dict):
        return {key: add(a[key], b[key]) for key in a}
    return a + b
