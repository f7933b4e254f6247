"""Listening sockets from ``listen`` directives, with nginx's socket options.

``open_listen_sockets`` binds every socket of a configuration (as the master does
before forking workers); ``check_bindable`` is what ``mailgate -t`` does, where an
address already in use (a running instance) is not an error, as in ``nginx -t``.
"""

from __future__ import annotations

import errno
import os
import socket

from mailgate.config import Config, ConfigError, Listen, ListenSocket
from mailgate.config.errors import os_error_text

__all__ = ["bind_listen", "check_bindable", "open_listen_sockets"]

IPPROTO_MPTCP = 262


def _apply_options(sock: socket.socket, listen: Listen) -> None:
    if listen.family != socket.AF_UNIX:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if listen.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(listen.ipv6only))
    if listen.rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, listen.rcvbuf)
    if listen.sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, listen.sndbuf)
    if listen.so_keepalive is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(listen.so_keepalive))
    for option, value in (
        (socket.TCP_KEEPIDLE, listen.tcp_keepidle),
        (socket.TCP_KEEPINTVL, listen.tcp_keepintvl),
        (socket.TCP_KEEPCNT, listen.tcp_keepcnt),
    ):
        if value:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def bind_listen(listen: Listen) -> socket.socket:
    """A bound, non-blocking socket for ``listen`` (not yet listening)."""
    proto = IPPROTO_MPTCP if listen.multipath else 0
    sock = socket.socket(listen.family, socket.SOCK_STREAM, proto)
    try:
        _apply_options(sock, listen)
        sock.bind(listen.sockaddr)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _bind_error(listen: Listen, exc: OSError) -> ConfigError:
    return ConfigError("bind() to %s failed %s" % (listen.addr_text, os_error_text(exc)))


def open_listen_sockets(config: Config) -> list[tuple[ListenSocket, socket.socket]]:
    """Bind and listen on every socket of the configuration; ConfigError on failure."""
    opened: list[tuple[ListenSocket, socket.socket]] = []
    try:
        for entry in config.listen_sockets():
            try:
                sock = bind_listen(entry.listen)
                sock.listen(entry.listen.backlog)
            except OSError as exc:
                raise _bind_error(entry.listen, exc) from None
            opened.append((entry, sock))
    except BaseException:
        for _, sock in opened:
            sock.close()
        raise
    return opened


def check_bindable(config: Config) -> None:
    """Try every bind of the configuration and release it; EADDRINUSE is not an error."""
    for entry in config.listen_sockets():
        listen = entry.listen
        if listen.family == socket.AF_UNIX and os.path.exists(listen.address):
            continue
        try:
            sock = bind_listen(listen)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                continue
            raise _bind_error(listen, exc) from None
        sock.close()
        if listen.family == socket.AF_UNIX:
            os.unlink(listen.address)
