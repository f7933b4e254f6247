"""``MailProxy``: the proxy on an asyncio (or uvloop) event loop.

Embedded use::

    async with mailgate.MailProxy(config, auth=my_auth) as proxy:
        print(proxy.addresses)
        await proxy.serve_forever()

The worker processes of the ``mailgate`` binary run the same object on sockets and
shared zones the master prepared before forking.  No signal handlers, no fork:
those belong to the process model (``mailgate.process``).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Iterable

from mailgate.config import Config, ConfigError, ListenSocket, ServerConfig, load_config
from mailgate.auth.http import AuthHttpClient
from mailgate.log import ErrorLog, LogFiles
from mailgate.proxy.access_log import AccessLog
from mailgate.proxy.runtime import AuthCallable, ServerRuntime, SessionCallable
from mailgate.proxy.session import ClientSession
from mailgate.proxy.stats import WorkerStats
from mailgate.proxy.timers import TimerWheel

__all__ = ["AuthCallable", "MailProxy", "ServerRuntime"]

class Listener:
    """One listening socket: its ``listen`` and the server of each local address."""

    def __init__(self, proxy: "MailProxy", entry: ListenSocket, runtimes: dict[ServerConfig, ServerRuntime]):
        self.proxy = proxy
        self.listen = entry.listen
        self._default = runtimes[entry.server]
        self._routes = {address: runtimes[server] for address, server in entry.routes.items()}
        self.server: asyncio.AbstractServer | None = None
        self.nodelay_by_hand = False  # set by listen_on()

    def stop_accepting(self) -> None:
        """Take no new connection, but keep the listening socket open until ``close()``.

        asyncio's own loops set up a connection they accepted in a task of its own that
        runs later; closing the server before those tasks run makes them fail (its
        sockets are gone) and drops the connection without a word.  So on those loops
        only the socket's reader goes; the server closes once the sessions are over.
        uvloop sets a connection up in the accept callback itself: its server closes now.
        """
        server = self.server
        if server is None:
            return
        loop = server.get_loop()
        if isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
        else:
            server.close()

    def close(self) -> None:
        """Close the listening socket (after ``stop_accepting()`` and the sessions)."""
        if self.server is not None:
            self.server.close()
            self.server = None

    async def listen_on(self, sock: socket.socket) -> None:
        """Accept connections on ``sock``, on the running loop."""
        loop = asyncio.get_running_loop()
        # The greeting must leave at once, not wait behind Nagle's algorithm.  uvloop
        # sets TCP_NODELAY on every TCP connection; asyncio's own loops only when the
        # socket says IPPROTO_TCP, which a socket handed in by an embedder (protocol 0)
        # or an MPTCP one does not: those sessions set it themselves.
        self.nodelay_by_hand = (
            isinstance(loop, asyncio.BaseEventLoop)
            and sock.family in (socket.AF_INET, socket.AF_INET6)
            and sock.proto != socket.IPPROTO_TCP
        )
        self.server = await loop.create_server(self.session, sock=sock, backlog=self.listen.backlog)

    def route(self, transport) -> ServerRuntime:
        """The server for a connection: by its local address (getsockname()) behind a
        wildcard listen that servers on specific addresses share, else the listen's own."""
        if not self._routes:
            return self._default
        local = transport.get_extra_info("sockname")
        return self._routes.get(local[0] if isinstance(local, tuple) else "", self._default)

    def session(self) -> asyncio.BaseProtocol:
        proxy = self.proxy
        if proxy.connection_limit is not None and proxy.connections_in_use() >= proxy.connection_limit:
            proxy.refused()
            return _Refused()
        session = ClientSession(self, proxy.next_connection_number())
        # counted from now, not from connection_made(), which the loop calls later: a
        # graceful stop in between must wait for this connection too
        proxy.sessions.add(session)
        return session


class _Refused(asyncio.Protocol):
    """A connection over ``worker_connections``: closed at once, as nginx closes it."""

    def connection_made(self, transport) -> None:
        transport.close()


class MailProxy:
    """The mail proxy serving a configuration on the running event loop.

    ``config`` is a ``Config`` or the path of a configuration file.  ``auth``, if
    given, replaces ``auth_http``: an async callable receiving ``AuthFacts`` and
    returning ``AuthOK``, ``AuthFailed`` or ``AuthRetry``.  ``sockets`` are
    already bound listening sockets (from the master), aligned with
    ``config.listen_sockets()``; without them the proxy binds its own.  ``zones``
    are the shared session zones (from the master); without them the proxy makes
    its own.  ``contexts`` are the TLS contexts the master built before forking
    (aligned with ``config.servers``, as ``build_contexts`` returns them).
    ``connection_limit`` is what ``worker_connections`` leaves for sessions: client,
    backend and auth_http connections together; new clients beyond it are refused.
    ``stats_memory`` is where the counters live (``WorkerStats.SIZE`` bytes, e.g. a
    worker's slot in memory the master shares); without it they live in the proxy.
    ``on_session``, if given, receives each finished session's ``SessionRecord`` (the
    access log's facts), on the loop: it must not block.
    """

    def __init__(
        self,
        config: Config | str,
        *,
        auth: AuthCallable | None = None,
        sockets: Iterable[socket.socket] | None = None,
        zones=None,
        log_files: LogFiles | None = None,
        connection_limit: int | None = None,
        contexts=None,
        stats_memory=None,
        on_session: SessionCallable | None = None,
    ):
        self.config = load_config(config) if isinstance(config, str) else config
        self.auth = auth
        self.on_session = on_session
        self._access_writers: dict = {}  # the access log files' writers, by path
        if auth is None:
            for server in self.config.servers:
                if server.auth_http is None:
                    raise ConfigError('no "auth_http" is defined for server', server.file, server.line)
        self.sessions: set[ClientSession] = set()
        self.listeners: list[Listener] = []
        self._sockets = list(sockets) if sockets is not None else None
        self._zones = zones
        self._own_zones = zones is None
        self._contexts = contexts
        self._auth_clients: dict[tuple, AuthHttpClient] = {}
        self._stores = None  # SessionStores, when a server has ssl_session_store
        self.log_files = log_files or LogFiles()
        self.connection_limit = connection_limit
        #: this proxy's counters (``stats()`` reads them)
        self.counters = WorkerStats(stats_memory)
        self._connections = 0
        self._refused_logged = 0.0
        self._main_log: ErrorLog | None = None
        self._closed = asyncio.Event()
        self._started = False
        #: the sessions' timeouts, on one loop timer (made on the loop in start())
        self.timers: TimerWheel | None = None

    def next_connection_number(self) -> int:
        self._connections += 1
        return self._connections

    def connections_in_use(self) -> int:
        """Client, backend and auth_http connections open now (what worker_connections counts)."""
        counters = self.counters
        return len(self.sessions) + counters.backend_connections + counters.auth_connections

    def stats(self) -> dict:
        """What the sessions of this proxy counted so far (``WorkerStats.snapshot()``)."""
        return self.counters.snapshot()

    def refused(self) -> None:
        """A client was refused for lack of connections: nginx's alert (nginx logs it for
        every refusal; here at most once a second, so a flood cannot fill the disk:
        docs/differences.md#logging)."""
        now = asyncio.get_running_loop().time()
        if now - self._refused_logged >= 1.0:
            self._refused_logged = now
            self.main_log.log("alert", "%d worker_connections are not enough"
                              % self.config.main.worker_connections)

    @property
    def main_log(self) -> ErrorLog:
        """The main context's error_log (process-level lines)."""
        if self._main_log is None:
            self._main_log = ErrorLog(self.config.main.error_log, self.log_files)
        return self._main_log

    # -- life cycle -----------------------------------------------------------

    async def start(self) -> None:
        """Build the TLS contexts and start accepting on every listen socket."""
        if self._started:
            return
        from mailgate.process.listeners import open_listen_sockets
        from mailgate.tls import SessionZones, build_client_contexts, build_contexts

        config = self.config
        self.timers = TimerWheel(asyncio.get_running_loop())
        if self._zones is None:
            self._zones = SessionZones()
            self._zones.configure(config)
        contexts = self._contexts if self._contexts is not None else build_contexts(config, self._zones)
        # the client-side contexts are the worker's own: their sessions are per worker
        client_contexts = build_client_contexts(config)
        runtimes = {}
        for server, context, client_tls in zip(config.servers, contexts, client_contexts):
            access_log = AccessLog(server.access_log, self.log_files, self._access_writers)
            runtimes[server] = ServerRuntime(server, context, ErrorLog(server.error_log, self.log_files),
                                             self.counters, self.auth, access_log, self.on_session,
                                             client_tls, self._auth_client(server, client_tls),
                                             self._session_store(context))
        entries = config.listen_sockets()
        if self._sockets is None:
            opened = open_listen_sockets(config)
        else:
            if len(self._sockets) != len(entries):
                raise ConfigError("the listening sockets do not match the configuration")
            opened = list(zip(entries, self._sockets))
        try:
            for entry, sock in opened:
                listener = Listener(self, entry, runtimes)
                await listener.listen_on(sock)
                self.listeners.append(listener)
        except BaseException:
            self._stop_listeners()
            raise
        self._started = True

    def flush_access_logs(self) -> None:
        """Write the lines the access logs' buffers hold (before a reopen, at the end)."""
        for writer in self._access_writers.values():
            writer.flush()

    def _auth_client(self, server, client_tls) -> "AuthHttpClient | None":
        """One auth_http client (one pool of kept connections) per auth server and
        settings, shared by the servers that have the same."""
        if server.auth_http is None or self.auth is not None:
            return None
        key = (server.auth_http, server.auth_http_keepalive, server.auth_http_keepalive_timeout,
               server.auth_http_ssl_verify, server.auth_http_ssl_trusted_certificate,
               server.auth_http_ssl_name)
        client = self._auth_clients.get(key)
        if client is None:
            client = self._auth_clients[key] = AuthHttpClient.for_server(server, client_tls.auth_http)
        return client

    def _session_store(self, context):
        """The worker's ``SessionStore`` for a context with ``ssl_session_store``."""
        if context is None or context.session_store is None:
            return None
        if self._stores is None:
            from mailgate.proxy.session_store import SessionStores

            self._stores = SessionStores()
        return self._stores.get(context.session_store, context.session_store_secret)

    @property
    def addresses(self) -> list[tuple[str, object]]:
        """(configured listen text, bound socket address) of every listening socket."""
        return [
            (listener.listen.addr_text, sock.getsockname())
            for listener in self.listeners
            for sock in (listener.server.sockets if listener.server else ())
        ]

    async def serve_forever(self) -> None:
        """Serve until ``close()`` is called (or the task is cancelled)."""
        await self.start()
        await self._closed.wait()

    def stop_accepting(self) -> None:
        """Take no new connections; sessions in progress go on, also those accepted a
        moment ago and not yet set up (see ``Listener.stop_accepting``)."""
        for listener in self.listeners:
            listener.stop_accepting()

    def _stop_listeners(self) -> None:
        for listener in self.listeners:
            listener.close()
        for listener in self.listeners:
            if listener.listen.family == socket.AF_UNIX and self._sockets is None:
                try:
                    import os

                    os.unlink(listener.listen.address)
                except OSError:
                    pass
        self.listeners = []

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every session has ended; True if they did within ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self.sessions:
            if deadline is not None and loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def close_sessions(self, reason: str | None = None) -> None:
        """End every session now (fast shutdown; ``reason`` is logged, e.g. shutdown timeout)."""
        for session in list(self.sessions):
            session.shutdown(reason)

    async def close(self, *, graceful: bool = True, timeout: float | None = None) -> None:
        """Stop accepting; with ``graceful`` let sessions finish (up to ``timeout``), then end them."""
        self.stop_accepting()
        # connections accepted just before wait in the loop's queue to be set up: let
        # them get their session first, so that the drain below counts them
        await asyncio.sleep(0)
        if graceful:
            if not await self.drain(timeout):
                self.close_sessions("shutdown timeout")
        else:
            self.close_sessions()
        await self.drain(5)
        self.flush_access_logs()
        self._stop_listeners()
        for client in self._auth_clients.values():
            client.close()
        if self.timers is not None:
            self.timers.close()
        if self._stores is not None:
            await self._stores.close()
            self._stores = None
        if self._own_zones and self._zones is not None:
            self._zones.close()
            self._zones = None
        self._closed.set()

    async def __aenter__(self) -> "MailProxy":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close(graceful=False)
