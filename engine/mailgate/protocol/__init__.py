"""Sans-I/O IMAP, POP3 and SMTP machines of the mail proxy, byte-exact with nginx.

No sockets and no event loop here: bytes in, actions out (see :mod:`events`).
The hot paths (command readers, SASL base64, relay buffers) are compiled from
``pyx/``; a pure-Python reference of each stays in this package.  The compiled
one is used unless ``MAILGATE_PURE=1`` is set or :func:`set_implementation` says
otherwise; :data:`IMPLEMENTATION` names the one in use (``mailgate -V`` prints it).

Client side::

    machine = ImapServer(server_config, tls=listen.ssl)
    actions = machine.start()                   # greeting, ArmTimer(timeout)
    actions = machine.receive_data(data)        # or get_buffer() / buffer_updated(n)
    actions = machine.timer_expired()
    actions = machine.tls_established()         # after a StartTLS action
    actions = machine.auth_result(AuthOK(...))  # after an AuthRequest action

Backend side, after a :class:`ConnectBackend` action::

    backend = machine.backend_login()
    actions = backend.start()                   # ArmTimer(timeout)
    actions = backend.receive_data(data)        # SendUpstream ..., LoginDone / LoginFailed
"""

from __future__ import annotations

from mailgate.protocol import _impl
from mailgate.protocol._impl import COMPILED, PYTHON, available
from mailgate.protocol._backend import Endpoints
from mailgate.protocol._server import MachineStateError
from mailgate.protocol.events import (
    ArmTimer,
    AuthFailed,
    AuthInternalError,
    AuthOK,
    AuthRequest,
    AuthResult,
    AuthRetry,
    Close,
    ConnectBackend,
    DisarmTimer,
    Log,
    LoginDone,
    LoginFailed,
    Send,
    SendUpstream,
    StartTLS,
)
from mailgate.protocol.imap import ImapBackendLogin, ImapServer
from mailgate.protocol.pop3 import Pop3BackendLogin, Pop3Server
from mailgate.protocol.smtp import SmtpBackendLogin, SmtpServer

IMPLEMENTATION: str = _impl.get().name

SERVERS = {"imap": ImapServer, "pop3": Pop3Server, "smtp": SmtpServer}


def set_implementation(name: str) -> None:
    """Use ``"compiled"`` or ``"python"`` primitives for machines created from now on."""
    global IMPLEMENTATION
    _impl.set_active(name)
    IMPLEMENTATION = name


def RelayBuffer(capacity: int):
    """A fixed-size relay buffer of the active implementation (see ``_relay.py``)."""
    return _impl.get().RelayBuffer(capacity)


def server_for(config, **kwargs):
    """The client-facing machine for ``config.protocol``."""
    return SERVERS[config.protocol](config, **kwargs)


__all__ = [
    "COMPILED", "PYTHON", "IMPLEMENTATION", "available", "set_implementation",
    "RelayBuffer", "server_for", "SERVERS", "MachineStateError", "Endpoints",
    "ImapServer", "Pop3Server", "SmtpServer",
    "ImapBackendLogin", "Pop3BackendLogin", "SmtpBackendLogin",
    "ArmTimer", "AuthFailed", "AuthInternalError", "AuthOK", "AuthRequest", "AuthResult",
    "AuthRetry", "Close", "ConnectBackend", "DisarmTimer", "Log", "LoginDone",
    "LoginFailed", "Send", "SendUpstream", "StartTLS",
]
