"""The auth phase of a client session: the request, its facts, the answer.

As nginx's ngx_mail_auth_http_module.c works on the one ngx_mail_session_t, this is
a part of ``ClientSession`` kept apart by concern (a mixin: no object of its own per
connection).  The machine's ``AuthRequest`` goes to the server's auth service
(auth_http, or an embedder's callable) with the facts nginx sends (``Auth-*``,
``Client-*``, ``Auth-SSL-*``); the answer goes back to the machine, and to the stats.
"""

from __future__ import annotations

import asyncio

from mailgate.auth import AuthFacts, SSLFacts
from mailgate.protocol.events import (
    AuthFailed,
    AuthInternalError,
    AuthOK,
    AuthRequest,
    AuthRetry,
)

__all__ = ["AuthPhase"]

_AUTH_RESULTS = {AuthOK: "ok", AuthFailed: "failed", AuthInternalError: "error", AuthRetry: "wait"}
_OUTCOMES = {"failed": "auth_failed", "error": "auth_error"}


class AuthPhase:
    """Mixin of ``ClientSession``: the auth request and its answer."""

    __slots__ = ()

    def _auth_request(self, action: AuthRequest) -> None:
        self._auth_task = self.loop.create_task(self._authenticate(action))

    def _auth_facts(self, request: AuthRequest) -> AuthFacts:
        ssl = None
        tls = self.tls
        if tls is not None:
            config = self.runtime.config
            if config.ssl_verify_client != "off":
                cert = tls.client_certificate()
                ssl = SSLFacts(
                    tls.protocol, tls.cipher, cert.verify, cert.subject, cert.issuer,
                    cert.serial, cert.fingerprint,
                    cert.pem if config.auth_http_pass_client_cert else None)
            else:
                ssl = SSLFacts(tls.protocol, tls.cipher)
        return AuthFacts(
            protocol=request.protocol, method=request.method, login=request.login,
            password=request.password, login_attempt=request.login_attempt,
            client_ip=self.client_address, salt=request.salt,
            sasl_host=request.sasl_host, sasl_port=request.sasl_port, imap_id=request.imap_id,
            client_host=self.client_host or None,
            proxy_protocol=self.proxy_addresses, smtp_helo=request.smtp_helo,
            smtp_from=request.smtp_from, smtp_to=request.smtp_to, ssl=ssl)

    async def _authenticate(self, request: AuthRequest) -> None:
        self.ctx.login = request.login
        runtime = self.runtime
        try:
            result = await runtime.authenticate(self._auth_facts(request), self._log_auth,
                                                debug=runtime.log.debug)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an embedder's callable failed: never a crashed worker
            self.log("error", "auth callable failed: %s" % type(exc).__name__)
            result = AuthInternalError()
        if self._closed:
            return
        kind = self.auth_status = _AUTH_RESULTS[type(result)]
        runtime.stats.auth(runtime.config.protocol, kind)
        if runtime.log.debug:
            self.log("debug", "mail auth result: %s" % kind)
        self.outcome = _OUTCOMES.get(kind, self.outcome)
        self._run(self.machine.auth_result(result))
        self.ctx.login = self.machine.login

    def _log_auth(self, level: str, message: str) -> None:
        self.log(level, message, "in http auth state")

