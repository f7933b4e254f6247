"""The master's status server: ``status_listen`` and ``status_allow``.

One place serves it for the whole node: the master, which holds the workers'
counters in shared memory (``StatsArea``) and knows its workers and whether it is
draining.  Workers never serve it (no extra listener or connection in the hot
processes, and the answers do not depend on which worker a request reaches).  The
HTTP side is the standard library's ``http.server`` (one thread per request, in
daemon threads of the master, which never runs Python in its signal loop while
they serve); the Prometheus text is prometheus-client's (a custom collector over
the summed counters, its ``CollectorRegistry`` and exposition).

* ``GET /``: the live status page (self-contained HTML and script polling
  ``/status.json``);
* ``GET /status.json``: the node's facts (``facts()`` of the master);
* ``GET /metrics``: Prometheus or OpenMetrics text (by the ``Accept`` header);
* ``GET /healthz``: ``200 ok`` while the node accepts sessions, ``503 draining``
  after ``QUIT`` (or ``WINCH``), for a load balancer's health check.

A client outside ``status_allow`` gets ``403``; anything else ``404`` or ``405``.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import choose_encoder

from mailgate.config import ConfigError
from mailgate.config.model import StatusListen
from mailgate.oserror import os_error_text
from mailgate.process.status_page import PAGE

__all__ = ["StatusServer", "metrics_registry"]

Facts = Callable[[], dict]
REQUEST_TIMEOUT = 10.0  # a client that says nothing is let go after this long


class _Collector:
    """prometheus-client's custom collector: the metric families of ``facts()``."""

    def __init__(self, facts: Facts):
        self.facts = facts

    def collect(self):
        facts = self.facts()
        stats = facts["stats"]
        yield _family(CounterMetricFamily, "mailgate_sessions", "Finished client sessions",
                      ("protocol", "outcome"), stats["sessions"])
        yield _family(GaugeMetricFamily, "mailgate_sessions_active", "Client sessions open now",
                      ("protocol",), stats["sessions_active"])
        yield _family(GaugeMetricFamily, "mailgate_sessions_relaying",
                      "Client sessions open now that are past the login, relaying",
                      ("protocol",), stats["sessions_relaying"])
        yield _family(CounterMetricFamily, "mailgate_auth", "Answers of the auth service",
                      ("protocol", "result"), stats["auth"])
        yield _family(CounterMetricFamily, "mailgate_tls_handshakes",
                      "Client TLS handshakes done", ("version", "resumed"),
                      {version: {"false": kinds["full"], "true": kinds["resumed"]}
                       for version, kinds in stats["tls_handshakes"].items()})
        yield _family(CounterMetricFamily, "mailgate_bytes", "Bytes relayed after the login",
                      ("direction",), stats["bytes"])
        yield _family(CounterMetricFamily, "mailgate_backend_errors",
                      "Backend logins that failed", ("reason",), stats["backend_errors"])
        backends = stats["backends"]
        for cls, name, documentation, key in (
                (CounterMetricFamily, "mailgate_backend_sessions", "Sessions sent to each backend",
                 "sessions"),
                (CounterMetricFamily, "mailgate_backend_failures",
                 "Failed logins at each backend", "errors"),
                (GaugeMetricFamily, "mailgate_backend_connections",
                 "Backend connections open now", "active")):
            yield _family(cls, name, documentation, ("backend",),
                          {backend: values[key] for backend, values in sorted(backends.items())})
        duration = stats["auth_http_duration"]
        buckets = [("+Inf" if bound == float("inf") else repr(bound), count)
                   for bound, count in duration["buckets"].items()]
        yield HistogramMetricFamily("mailgate_auth_http_duration_seconds",
                                    "Time to the auth_http server's answer",
                                    buckets=buckets, sum_value=duration["sum"])
        yield GaugeMetricFamily("mailgate_auth_http_in_flight", "auth_http requests waiting now",
                                value=stats["auth_http_in_flight"])
        workers = facts["workers"]
        yield GaugeMetricFamily("mailgate_workers", "Worker processes running",
                                value=len(workers))
        rss = GaugeMetricFamily("mailgate_worker_resident_memory_bytes",
                                "Resident memory of each worker process", labels=("pid",))
        for worker in workers:
            rss.add_metric((str(worker["pid"]),), worker["rss_bytes"])
        yield rss
        yield GaugeMetricFamily("mailgate_draining",
                                "1 while the node drains (QUIT): it takes no new sessions",
                                value=1 if facts["draining"] else 0)


def _family(cls, name: str, documentation: str, labels: tuple[str, ...], values: dict):
    """A metric family of ``values``, dicts nested one level per label (keys: label values)."""
    family = cls(name, documentation, labels=labels)

    def add(prefix: tuple, node) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                add(prefix + (key,), child)
        else:
            family.add_metric(prefix, node)

    add((), values)
    return family


def metrics_registry(facts: Facts) -> CollectorRegistry:
    """A registry holding only mailgate's collector over ``facts``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(facts))
    return registry


class _Handler(BaseHTTPRequestHandler):
    server_version = "mailgate"
    protocol_version = "HTTP/1.0"
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        status: StatusServer = self.server.status  # type: ignore[attr-defined]
        if not status.allowed(self.client_address[0]):
            self._send(403, "text/plain; charset=utf-8", b"forbidden\n", head)
            return
        path = self.path.partition("?")[0]
        if path == "/":
            self._send(200, "text/html; charset=utf-8", PAGE, head)
        elif path == "/status.json":
            body = json.dumps(status.facts(), indent=1, default=str).encode()
            self._send(200, "application/json", body, head)
        elif path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, content_type, encoder(status.registry), head)
        elif path == "/healthz":
            if status.facts()["draining"]:
                self._send(503, "text/plain; charset=utf-8", b"draining\n", head)
            else:
                self._send(200, "text/plain; charset=utf-8", b"ok\n", head)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n", head)

    def _send(self, code: int, content_type: str, body: bytes, head: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass  # the master's stderr is its error log: no line per request there


def _handle_error(server: ThreadingHTTPServer, request, client_address) -> None:
    # a client gone before its answer was written (HAProxy's health check resets its
    # connection as soon as it has read the status line) is nothing to report; anything
    # else is a bug, printed with its traceback
    if isinstance(sys.exc_info()[1], OSError):
        return
    ThreadingHTTPServer.handle_error(server, request, client_address)


def _server_class(family: int) -> type[ThreadingHTTPServer]:
    return type("StatusHTTPServer", (ThreadingHTTPServer,),
                {"address_family": family, "daemon_threads": True, "request_queue_size": 64,
                 "handle_error": _handle_error})


class StatusServer:
    """The status endpoints on every ``status_listen`` address, served by daemon threads."""

    def __init__(self, listens: Iterable[StatusListen], allow: Iterable[str], facts: Facts):
        """Bind every address (ConfigError with nginx's bind() message if one fails)."""
        self.facts = facts
        self.threads: list[threading.Thread] = []
        self.registry = metrics_registry(facts)
        self.networks = tuple(ipaddress.ip_network(text) for text in allow)
        self.servers: list[ThreadingHTTPServer] = []
        for listen in listens:
            try:
                server = _server_class(listen.family)((listen.host, listen.port), _Handler)
            except OSError as exc:
                self.close()
                raise ConfigError("bind() to %s failed %s"
                                  % (listen.addr_text, os_error_text(exc))) from None
            server.status = self  # type: ignore[attr-defined]
            self.servers.append(server)
        self.threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                         name="status", daemon=True) for server in self.servers]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def allowed(self, host: str) -> bool:
        """Whether a client at ``host`` may ask (``status_allow``)."""
        address = ipaddress.ip_address(host.partition("%")[0])
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def close_in_child(self) -> None:
        """In a forked worker: let go of the listening sockets (the master keeps them)."""
        for server in self.servers:
            server.socket.close()

    def close(self) -> None:
        """Stop serving and close the listening sockets."""
        for server, thread in zip(self.servers, self.threads):
            if thread.is_alive():
                server.shutdown()
        for server in self.servers:
            server.server_close()
        self.servers = []
