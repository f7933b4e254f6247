"""What every session of one ``server {}`` shares while the proxy runs: ``ServerRuntime``.

Its settings, its TLS context, TLS to its backends (``BackendTLS``), its error log, the
worker's counters, the SMTP client-name resolver, the greeting when it is the same for
every connection, and the auth decision (auth_http, or the embedder's callable).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Awaitable, Callable

from mailgate.auth import AuthFacts
from mailgate.auth import http as auth_http
from mailgate.config import ServerConfig
from mailgate.log import ErrorLog
from mailgate.protocol import SERVERS
from mailgate.protocol.events import AuthFailed, AuthInternalError, AuthOK, AuthRetry
from mailgate.proxy.record import SessionRecord
from mailgate.proxy.backend_tls import BackendTLS
from mailgate.proxy.resolver import ClientNameResolver

if TYPE_CHECKING:
    from mailgate.proxy.access_log import AccessLog
    from mailgate.proxy.session_store import SessionStore
    from mailgate.proxy.stats import WorkerStats

__all__ = ["AuthCallable", "ServerRuntime", "SessionCallable"]

AuthCallable = Callable[[AuthFacts], Awaitable["AuthOK | AuthFailed | AuthRetry"]]
SessionCallable = Callable[[SessionRecord], None]
_RESULTS = (AuthOK, AuthFailed, AuthRetry, AuthInternalError)
_BACKEND_TLS = (None, "on", "starttls", "off")


class ServerRuntime:
    """What every session of one ``server {}`` shares: settings, TLS, log, auth, stats,
    and the worker's ``ssl_session_store``, if the server has one."""

    def __init__(self, config: ServerConfig, tls, log: ErrorLog, stats: "WorkerStats",
                 auth: "AuthCallable | None" = None, access_log: "AccessLog | None" = None,
                 on_session: "SessionCallable | None" = None, client_tls=None,
                 auth_client: "auth_http.AuthHttpClient | None" = None,
                 session_store: "SessionStore | None" = None):
        self.config = config
        self.tls = tls
        #: TLS to the backends (``client_tls``: the server's ``ClientContexts``)
        self.backend_tls = BackendTLS(config, client_tls.backend) if client_tls else None
        #: the worker's auth_http client for this server's auth server and settings
        #: (shared by the servers with the same ones: one pool of kept connections);
        #: None with an embedder's callable
        self.auth_client = auth_client
        self.session_store = session_store
        self.log = log
        self.stats = stats
        self.auth = auth
        self.access_log = access_log
        self.on_session = on_session
        #: whether a finished session's record is wanted (else none is made)
        self.wants_records = bool(access_log) or on_session is not None
        self.resolver = ClientNameResolver.from_server(config)
        #: the greeting actions when they are the same for every connection (see
        #: ServerMachine.fixed_start), else None
        self.fixed_start = SERVERS[config.protocol].fixed_start(config)

    def session_ended(self, record: SessionRecord) -> None:
        """A finished session's record: to the access logs, then the embedder's callable."""
        if self.access_log:
            self.access_log.write(record)
        if self.on_session is not None:
            try:
                self.on_session(record)
            except Exception as exc:  # noqa: BLE001 - an embedder's bug never ends a worker
                self.log.log("error", "on_session callable failed: %s" % type(exc).__name__)

    async def authenticate(self, facts: AuthFacts, log, *, debug: bool = False):
        """The auth decision for ``facts``: the embedder's callable, or auth_http
        (``debug``: log the request and the answer at debug, secrets withheld)."""
        hook = self.auth
        config = self.config
        if hook is None:
            stats = self.stats
            loop = asyncio.get_running_loop()
            started = loop.time()
            stats.auth_request_started()
            try:
                return await self.auth_client.query(config.auth_http_header,
                                                    config.auth_http_timeout, facts, log,
                                                    debug=debug)
            finally:
                stats.auth_request_done(loop.time() - started)
        try:
            result = await asyncio.wait_for(hook(facts), config.auth_http_timeout)
        except asyncio.TimeoutError:
            log("error", "auth callable timed out (110: Connection timed out)")
            return AuthInternalError()
        if not isinstance(result, _RESULTS):
            log("error", "auth callable returned %s, not an auth result" % type(result).__name__)
            return AuthInternalError()
        if isinstance(result, AuthOK) and result.backend_tls not in _BACKEND_TLS:
            log("error", "auth callable returned backend_tls=%r, not on, starttls or off"
                % (result.backend_tls,))
            return AuthInternalError()
        return result
