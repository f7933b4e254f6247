"""TLS to the backends of one ``server {}`` in one worker: ``BackendTLS``.

The client-side context built from the server's ``proxy_ssl_*`` directives, the name a
backend's certificate must carry and SNI (``proxy_ssl_name``, ``proxy_ssl_server_name``:
the Auth-Server address when no name is configured, as ngx_stream_proxy_module takes
``$proxy_host``), and the sessions to resume, one per backend address, kept in the
worker (``proxy_ssl_session_reuse``, as ngx_stream_upstream_round_robin keeps one per
peer).
"""

from __future__ import annotations

import ipaddress

from mailgate.tls import TLSClientContext, TLSSession, TLSStream

__all__ = ["BackendTLS", "SESSIONS_MAX"]

#: the sessions kept per server{} in a worker: an auth server may name many backends
SESSIONS_MAX = 1024


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class BackendTLS:
    """What the backend connections of one server{} share for TLS in a worker."""

    __slots__ = ("context", "name", "reuse", "server_name", "verify", "_sessions")

    def __init__(self, config, context: TLSClientContext):
        self.context = context
        self.verify: bool = config.proxy_ssl_verify
        self.name: str = config.proxy_ssl_name
        self.server_name: bool = config.proxy_ssl_server_name
        self.reuse: bool = config.proxy_ssl_session_reuse
        self._sessions: dict[tuple[str, int], TLSSession] = {}

    def verify_name(self, address: str) -> str:
        """The name the certificate of the backend at ``address`` must carry."""
        return self.name or address

    def stream(self, address: str, port: int, log=None) -> TLSStream:
        """A client-side stream to the backend at ``address``:``port``, offering the
        session kept for it."""
        name = self.verify_name(address)
        # RFC 6066 section 3: no IP address in SNI
        sni = name if self.server_name and not _is_address(name) else None
        session = self._sessions.get((address, port)) if self.reuse else None
        return TLSStream(self.context, log=log, server_name=sni,
                         verify_name=name if self.verify else None, session=session)

    def keep(self, address: str, port: int, stream: TLSStream) -> None:
        """Keep the session of ``stream`` (verified, handshake done) for the next
        connection to the same backend."""
        if not self.reuse:
            return
        session = stream.session()
        if session is None or not session.resumable:
            return
        sessions = self._sessions
        key = (address, port)
        sessions.pop(key, None)
        if len(sessions) >= SESSIONS_MAX:
            del sessions[next(iter(sessions))]  # the least recently kept
        sessions[key] = session

    def forget(self, address: str, port: int) -> None:
        """Offer no session to this backend again (its handshake failed)."""
        self._sessions.pop((address, port), None)
