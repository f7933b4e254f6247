"""What every session of one ``server {}`` shares while the proxy runs: ``ServerRuntime``.

Its settings, its TLS context, its error log, the worker's counters, the SMTP
client-name resolver, the greeting when it is the same for every connection, and
the auth decision (auth_http, or the embedder's callable).
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
from mailgate.proxy.resolver import ClientNameResolver

if TYPE_CHECKING:
    from mailgate.proxy.session_store import SessionStore
    from mailgate.proxy.stats import WorkerStats

__all__ = ["AuthCallable", "ServerRuntime"]

AuthCallable = Callable[[AuthFacts], Awaitable["AuthOK | AuthFailed | AuthRetry"]]
_RESULTS = (AuthOK, AuthFailed, AuthRetry, AuthInternalError)


class ServerRuntime:
    """What every session of one ``server {}`` shares: settings, TLS, log, auth, stats,
    and the worker's ``ssl_session_store``, if the server has one."""

    def __init__(self, config: ServerConfig, tls, log: ErrorLog, stats: "WorkerStats",
                 auth: "AuthCallable | None" = None, session_store: "SessionStore | None" = None):
        self.config = config
        self.tls = tls
        self.session_store = session_store
        self.log = log
        self.stats = stats
        self.auth = auth
        self.resolver = ClientNameResolver.from_server(config)
        #: the greeting actions when they are the same for every connection (see
        #: ServerMachine.fixed_start), else None
        self.fixed_start = SERVERS[config.protocol].fixed_start(config)

    async def authenticate(self, facts: AuthFacts, log):
        """The auth decision for ``facts``: the embedder's callable, or auth_http."""
        hook = self.auth
        config = self.config
        if hook is None:
            stats = self.stats
            loop = asyncio.get_running_loop()
            started = loop.time()
            stats.auth_request_started()
            try:
                return await auth_http.query(config.auth_http, config.auth_http_header,
                                             config.auth_http_timeout, facts, log)
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
        return result
