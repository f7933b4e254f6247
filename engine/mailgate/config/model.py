"""The typed, immutable result of reading a configuration.

A ``Config`` holds the main-context settings, one merged ``ServerConfig`` per
``server {}`` block, and the listening sockets to open.  Values are already merged
(server{} -> mail{} -> default) by the rules declared once in the directive registry;
nothing here knows a default.  The package ``mailgate.config`` exports these types.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Mapping

from mailgate.config.errors import ConfigMessage

Location = tuple[str, int]


@dataclass(frozen=True)
class Listen:
    """One address of a ``listen`` directive, with its parameters.

    ``address`` is the IP text (``0.0.0.0`` for ``*``) or, for ``unix:``, the socket
    path; ``addr_text`` is nginx's rendering used in log lines (``127.0.0.1:143``,
    ``[::1]:143``, ``unix:/run/x.sock``).
    """

    address: str
    port: int
    family: int
    addr_text: str
    ssl: bool = False
    proxy_protocol: bool = False
    bind: bool = False
    backlog: int = 511
    rcvbuf: int | None = None
    sndbuf: int | None = None
    ipv6only: bool = True
    so_keepalive: bool | None = None
    tcp_keepidle: int | None = None
    tcp_keepintvl: int | None = None
    tcp_keepcnt: int | None = None
    multipath: bool = False
    file: str = ""
    line: int = 0

    @property
    def wildcard(self) -> bool:
        """True for ``*:port`` / ``[::]:port``: the socket that catches other addresses."""
        return self.family != socket.AF_UNIX and self.address in ("0.0.0.0", "::")

    @property
    def sockaddr(self) -> tuple | str:
        """The address in the form ``socket.bind`` takes."""
        if self.family == socket.AF_UNIX:
            return self.address
        if self.family == socket.AF_INET6:
            return (self.address, self.port, 0, 0)
        return (self.address, self.port)


@dataclass(frozen=True)
class AuthHttpTarget:
    """Where ``auth_http`` requests go.

    ``peer`` is nginx's display name of the peer (``127.0.0.1:9000``, ``unix:/x``) used in
    log lines; ``host_header`` is the Host header value (no port; ``localhost`` for unix);
    ``tls`` is set for an ``https://`` URL.
    """

    url: str
    family: int
    address: str  # IP text, or the unix socket path
    port: int
    uri: str
    host_header: str
    peer: str
    tls: bool = False  # https://


@dataclass(frozen=True)
class Resolver:
    """The ``resolver`` directive: DNS servers as (ip, port) and its options."""

    servers: tuple[tuple[str, int], ...]
    valid: int | None = None  # seconds overriding the answers' TTL
    ipv4: bool = True
    ipv6: bool = True


@dataclass(frozen=True)
class LogTarget:
    """One ``error_log`` destination with its level.

    ``kind`` is ``file``, ``stderr``, ``syslog`` or ``memory``.  For syslog, ``address``
    is the (host, port) or unix path of the server.
    """

    kind: str
    level: str = "error"
    path: str | None = None
    address: tuple[str, int] | str | None = None
    facility: str = "local7"
    severity: str | None = None  # None: each line's own level
    tag: str = "nginx"
    nohostname: bool = False
    size: int | None = None  # memory buffer size


@dataclass(frozen=True)
class LogFormat:
    """A ``log_format``: its name, its escaping (``default``, ``json`` or ``none``) and
    the parts of a line, each literal text or a variable's name."""

    name: str
    escape: str
    parts: tuple[tuple[bool, str], ...]  # (is a variable, text or variable name)


@dataclass(frozen=True)
class AccessLogTarget:
    """One ``access_log``: a file (``path``, ``buffer`` bytes held, written at least
    every ``flush`` seconds) or a syslog server (``syslog``), and its format."""

    format: LogFormat
    path: str | None = None
    buffer: int = 0
    flush: float | None = None
    syslog: LogTarget | None = None


@dataclass(frozen=True)
class StatusListen:
    """A ``status_listen`` address: where the status page and metrics are served."""

    family: int
    host: str
    port: int
    addr_text: str


@dataclass(frozen=True)
class SharedZone:
    """A named shared-memory zone (``ssl_session_cache shared:NAME:SIZE``)."""

    name: str
    size: int


@dataclass(frozen=True)
class SessionCacheSetting:
    """``ssl_session_cache`` after merging.

    ``builtin`` is ``off`` (SSL_SESS_CACHE_OFF), ``none`` (IDs sent, nothing stored),
    ``builtin`` (OpenSSL's per-process cache of ``builtin_size`` sessions, or OpenSSL's
    default when None) or ``shared_only`` (only the shared zone).  The shared zone is
    inherited separately from the builtin setting, as nginx does; it is unused when
    ``builtin`` is ``off`` or ``none``.
    """

    builtin: str = "none"
    builtin_size: int | None = None
    shared: SharedZone | None = None


@dataclass(frozen=True)
class SessionStoreSetting:
    """``ssl_session_store redis://[user:password@]host[:port][/db] [prefix=] [timeout=]``.

    ``timeout`` is in seconds (float).  ``name`` is the address as logged: the URL
    without its user and password, which never appear in ``repr`` either.
    """

    host: str
    port: int = 6379
    db: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    prefix: str = "mailgate:ssl:"
    timeout: float = 0.1

    @property
    def name(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.db}"


@dataclass(frozen=True)
class PasswordFile:
    """``ssl_password_file``: the file and the passwords read from it at load time.

    Read once, as nginx does, so a named pipe works.  The passwords never appear in
    ``repr``.
    """

    path: str
    passwords: tuple[bytes, ...] = field(repr=False)


@dataclass(frozen=True)
class MainConfig:
    """Settings of the main and ``events {}`` contexts that a mail deployment uses."""

    worker_processes: int
    worker_processes_auto: bool
    pid: str
    error_log: tuple[LogTarget, ...]
    daemon: bool
    master_process: bool
    user: tuple[str, str]  # workers switch to it when the master runs as root
    worker_rlimit_nofile: int | None
    worker_priority: int
    worker_shutdown_timeout: float | None
    working_directory: str | None
    env: tuple[str, ...]
    worker_connections: int
    events_use: str | None
    multi_accept: bool
    accept_mutex: bool


@dataclass(frozen=True)
class ServerConfig:
    """One ``server {}`` with every mail directive merged; attributes are directive names.

    Times from millisecond slots are float seconds; ``ssl_session_timeout`` is whole
    seconds; sizes are bytes; file paths are absolute (``data:``/``engine:``/``store:``
    values are kept verbatim).
    """

    # where the server {} block starts
    file: str
    line: int
    # ngx_mail_core_module
    protocol: str
    listens: tuple[Listen, ...]
    server_name: str
    timeout: float
    resolver: Resolver | None
    resolver_timeout: float
    error_log: tuple[LogTarget, ...]
    max_errors: int
    # ngx_mail_auth_http_module
    auth_http: AuthHttpTarget | None  # None only when loaded for an embedding auth callable
    auth_http_header: tuple[tuple[str, str], ...]
    auth_http_pass_client_cert: bool
    auth_http_pass_imap_id: bool
    auth_http_timeout: float
    auth_http_keepalive: int
    auth_http_keepalive_timeout: float
    auth_http_ssl_verify: bool
    auth_http_ssl_trusted_certificate: str | None
    auth_http_ssl_name: str
    # ngx_mail_proxy_module
    proxy: bool
    proxy_buffer: int
    proxy_timeout: float
    proxy_pass_error_message: bool
    proxy_protocol: str
    proxy_smtp_auth: bool
    proxy_imap_id: bool
    proxy_pop3_xclient: bool
    xclient: bool
    proxy_ssl: bool
    proxy_starttls: bool
    proxy_ssl_verify: bool
    proxy_ssl_trusted_certificate: str | None
    proxy_ssl_verify_depth: int
    proxy_ssl_crl: str | None
    proxy_ssl_name: str
    proxy_ssl_server_name: bool
    proxy_ssl_session_reuse: bool
    proxy_ssl_protocols: frozenset[str]
    proxy_ssl_ciphers: str
    proxy_ssl_conf_command: tuple[tuple[str, str], ...]
    proxy_ssl_certificate: str | None
    proxy_ssl_certificate_key: str | None
    proxy_ssl_password_file: PasswordFile | None
    # ngx_mail_realip_module
    set_real_ip_from: tuple[str, ...]
    # mailgate_mail_log_module (mailgate's own)
    access_log: tuple[AccessLogTarget, ...]
    # ngx_mail_imap_module
    imap_auth: frozenset[str]
    imap_capabilities: tuple[str, ...]
    imap_client_buffer: int
    imap_id: tuple[tuple[str, str], ...]
    # ngx_mail_pop3_module
    pop3_auth: frozenset[str]
    pop3_capabilities: tuple[str, ...]
    # ngx_mail_smtp_module
    smtp_auth: frozenset[str]
    smtp_capabilities: tuple[str, ...]
    smtp_client_buffer: int
    smtp_greeting_delay: float
    # ngx_mail_ssl_module
    ssl: bool
    starttls: str
    ssl_certificate: tuple[str, ...]
    ssl_certificate_key: tuple[str, ...]
    ssl_certificate_compression: bool
    ssl_password_file: PasswordFile | None
    ssl_dhparam: str | None
    ssl_ecdh_curve: str
    ssl_protocols: frozenset[str]
    ssl_ciphers: str
    ssl_prefer_server_ciphers: bool
    ssl_session_cache: SessionCacheSetting
    ssl_session_tickets: bool
    ssl_session_ticket_key: tuple[str, ...]
    ssl_session_timeout: int
    ssl_session_store: SessionStoreSetting | None
    ssl_session_store_key: str | None
    ssl_verify_client: str
    ssl_verify_depth: int
    ssl_client_certificate: str | None
    ssl_trusted_certificate: str | None
    ssl_crl: str | None
    ssl_conf_command: tuple[tuple[str, str], ...]
    # where each directive that applies to this server was set (server or mail level)
    locations: Mapping[str, Location] = field(default_factory=dict, repr=False, compare=False)

    @property
    def tls_enabled(self) -> bool:
        """A TLS context is built: a ``listen ... ssl``, ``starttls on|only`` or ``ssl on``."""
        return self.ssl or self.starttls != "off" or any(ls.ssl for ls in self.listens)

    @property
    def backend_tls(self) -> str:
        """The configured TLS to the backend: ``on`` (proxy_ssl), ``starttls`` or ``off``."""
        return "on" if self.proxy_ssl else "starttls" if self.proxy_starttls else "off"

    def location(self, directive: str) -> Location | None:
        """(FILE, LINE) of the directive that gave this server its value, if any."""
        return self.locations.get(directive)

    @classmethod
    def directive_fields(cls) -> tuple[str, ...]:
        """The attributes that carry a directive's merged value."""
        return tuple(f.name for f in fields(cls) if f.name not in ("file", "line", "locations"))


@dataclass(frozen=True)
class ListenSocket:
    """A socket to open, and which server answers each local address arriving on it.

    With a wildcard address on a port, nginx binds only the wildcard (plus addresses
    marked ``bind``) and routes connections by ``getsockname()``: ``routes`` maps the
    specific addresses served through this socket to their servers; ``server`` answers
    every other address.
    """

    listen: Listen
    server: ServerConfig
    routes: Mapping[str, ServerConfig] = field(default_factory=dict)

    def server_for(self, local_address: str) -> ServerConfig:
        """The server for a connection accepted on this socket."""
        return self.routes.get(local_address, self.server)


@dataclass(frozen=True)
class Config:
    """A whole configuration: main settings, servers, sockets, and how it was read."""

    prefix: str
    conf_prefix: str
    conf_file: str
    main: MainConfig
    servers: tuple[ServerConfig, ...]
    has_mail: bool
    messages: tuple[ConfigMessage, ...] = ()
    files: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)
    #: mailgate_mail_status_module (mailgate's own): where the status page is served,
    #: and the networks it answers (CIDR texts)
    status_listen: tuple[StatusListen, ...] = ()
    status_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    @property
    def shared_zones(self) -> tuple[SharedZone, ...]:
        """Every shared-memory zone the servers use, once each (created before fork)."""
        seen: dict[str, SharedZone] = {}
        for server in self.servers:
            zone = server.ssl_session_cache.shared
            if zone is not None and server.tls_enabled:
                seen.setdefault(zone.name, zone)
        return tuple(seen.values())

    def listen_sockets(self) -> tuple[ListenSocket, ...]:
        """The sockets to bind, grouped per (family, port) as nginx groups them."""
        groups: dict[tuple[int, int | str], list[tuple[Listen, ServerConfig]]] = {}
        for server in self.servers:
            for listen in server.listens:
                key = (listen.family, listen.address if listen.family == socket.AF_UNIX else listen.port)
                groups.setdefault(key, []).append((listen, server))
        sockets: list[ListenSocket] = []
        for members in groups.values():
            wildcard = next(((ls, srv) for ls, srv in members if ls.wildcard), None)
            if wildcard is None:
                sockets.extend(ListenSocket(ls, srv) for ls, srv in members)
                continue
            routed = {ls.address: srv for ls, srv in members if not ls.wildcard and not ls.bind}
            sockets.append(ListenSocket(wildcard[0], wildcard[1], MappingProxyType(routed)))
            sockets.extend(
                ListenSocket(ls, srv) for ls, srv in members if not ls.wildcard and ls.bind
            )
        return tuple(sockets)
