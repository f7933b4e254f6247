"""A stand-in for mailgate.config's objects until that package lands on main.

The attribute names and types are those the configuration object promises
(BRIEF-COMMON.md); the values default to nginx's defaults.  Only the TLS
tests use it.
"""

from __future__ import annotations

import dataclasses
import socket
from dataclasses import dataclass, field

CONF = "/etc/mailgate/mail.conf"


@dataclass(frozen=True)
class Listen:
    address: str
    port: int
    family: int = socket.AF_INET
    ssl: bool = True
    proxy_protocol: bool = False


@dataclass(frozen=True)
class SharedZone:
    name: str
    size: int


@dataclass(frozen=True)
class SessionCacheSetting:
    builtin: str = "none"
    builtin_size: int | None = None
    shared: SharedZone | None = None


@dataclass(frozen=True)
class AuthHttpTarget:
    url: str = "http://127.0.0.1:9/auth"


@dataclass(frozen=True)
class ServerConfig:
    protocol: str = "imap"
    server_name: str = "localhost"
    timeout: float = 60.0
    resolver: object = None
    resolver_timeout: float = 30.0
    max_errors: int = 5
    listens: tuple = (Listen("127.0.0.1", 993),)
    auth_http: AuthHttpTarget = AuthHttpTarget()
    auth_http_header: tuple = ()
    auth_http_pass_client_cert: bool = False
    auth_http_timeout: float = 60.0
    proxy_buffer: int = 4096
    proxy_timeout: float = 86400.0
    proxy_pass_error_message: bool = False
    proxy_protocol: str = "off"
    proxy_smtp_auth: bool = False
    xclient: bool = True
    set_real_ip_from: tuple = ()
    imap_auth: frozenset = frozenset({"plain"})
    imap_capabilities: tuple = ("IMAP4", "IMAP4rev1", "UIDPLUS")
    imap_client_buffer: int = 4096
    pop3_auth: frozenset = frozenset({"plain"})
    pop3_capabilities: tuple = ("TOP", "USER", "UIDL")
    smtp_auth: frozenset = frozenset({"plain", "login"})
    smtp_capabilities: tuple = ()
    smtp_client_buffer: int = 4096
    smtp_greeting_delay: float = 0.0
    starttls: str = "off"
    ssl: bool = False
    tls_enabled: bool = True
    ssl_certificate: tuple = ()
    ssl_certificate_key: tuple = ()
    ssl_certificate_compression: bool = False
    ssl_password_file: str | None = None
    ssl_dhparam: str | None = None
    ssl_ecdh_curve: str = "auto"
    ssl_protocols: frozenset = frozenset({"TLSv1.2", "TLSv1.3"})
    ssl_ciphers: str = "HIGH:!aNULL:!MD5"
    ssl_prefer_server_ciphers: bool = False
    ssl_session_cache: SessionCacheSetting = SessionCacheSetting()
    ssl_session_tickets: bool = True
    ssl_session_ticket_key: tuple = ()
    ssl_session_timeout: int = 300
    ssl_verify_client: str = "off"
    ssl_verify_depth: int = 1
    ssl_client_certificate: str | None = None
    ssl_trusted_certificate: str | None = None
    ssl_crl: str | None = None
    ssl_conf_command: tuple = ()
    file: str = CONF
    line: int = 3
    locations: dict = field(default_factory=dict, compare=False, hash=False)

    def location(self, directive: str):
        return self.locations.get(directive)


@dataclass(frozen=True)
class Config:
    servers: tuple
    prefix: str = "/etc/mailgate"


def server(**settings) -> ServerConfig:
    """A ServerConfig; every directive given is located at its own line."""
    locations = dict(settings.pop("locations", {}))
    for line, name in enumerate(settings, start=10):
        locations.setdefault(name, (CONF, line))
    locations.setdefault("listen", (CONF, 4))
    for name in ("ssl_certificate", "ssl_certificate_key", "ssl_session_ticket_key", "listens"):
        if isinstance(settings.get(name), (list, str)):
            value = settings[name]
            settings[name] = (value,) if isinstance(value, str) else tuple(value)
    if "ssl_protocols" in settings:
        settings["ssl_protocols"] = frozenset(settings["ssl_protocols"])
    return ServerConfig(locations=locations, **settings)


def replace(config: ServerConfig, **settings) -> ServerConfig:
    return dataclasses.replace(config, **settings)
