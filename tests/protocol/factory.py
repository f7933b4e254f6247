"""Server configs for the protocol tests.

Until ``mailgate.Config`` lands on this branch, :func:`server_config` builds a
stand-in with exactly the ``ServerConfig`` attribute names the machines read, set
to nginx's defaults (SPEC §1.2), with keyword overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

PAGE = 4096


@dataclass(frozen=True)
class StandInServerConfig:
    protocol: str = "imap"
    server_name: str = "mx.test"
    timeout: float = 60.0
    max_errors: int = 5
    proxy_buffer: int = PAGE
    proxy_timeout: float = 24 * 3600.0
    proxy_pass_error_message: bool = False
    proxy_smtp_auth: bool = False
    xclient: bool = True
    imap_auth: frozenset = frozenset({"plain"})
    imap_capabilities: tuple = ("IMAP4", "IMAP4rev1", "UIDPLUS")
    imap_client_buffer: int = PAGE
    pop3_auth: frozenset = frozenset({"plain"})
    pop3_capabilities: tuple = ("TOP", "USER", "UIDL")
    smtp_auth: frozenset = frozenset({"plain", "login"})
    smtp_capabilities: tuple = ()
    smtp_client_buffer: int = PAGE
    smtp_greeting_delay: float = 0.0
    starttls: str = "off"


def server_config(protocol: str = "imap", **overrides) -> StandInServerConfig:
    """A merged server config for ``protocol`` with nginx's defaults."""
    for key in ("imap_auth", "pop3_auth", "smtp_auth"):
        if key in overrides:
            overrides[key] = frozenset(overrides[key])
    for key in ("imap_capabilities", "pop3_capabilities", "smtp_capabilities"):
        if key in overrides:
            overrides[key] = tuple(overrides[key])
    return replace(StandInServerConfig(protocol=protocol), **overrides)
