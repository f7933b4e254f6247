"""Listening sockets from ``listen`` directives, with nginx's socket options.

``open_listen_sockets`` binds every socket of a configuration (as the master does
before forking workers); ``check_bindable`` is what ``mailgate -t`` does, where an
address already in use (a running instance) is not an error, as in ``nginx -t``.
"""

from __future__ import annotations

import errno
import os
import socket
import time

from mailgate.config import Config, ConfigError, Listen, ListenSocket
from mailgate.oserror import os_error_text

__all__ = ["bind_listen", "check_bindable", "configure_listen", "open_listen", "open_listen_sockets"]

BIND_TRIES = 5  # nginx tries a busy address five times, 500 ms apart
BIND_RETRY_DELAY = 0.5

IPPROTO_MPTCP = 262


def _apply_options(sock: socket.socket, listen: Listen) -> None:
    if listen.family != socket.AF_UNIX:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if listen.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(listen.ipv6only))
    configure_listen(sock, listen)


def configure_listen(sock: socket.socket, listen: Listen) -> None:
    """The options nginx (re)applies to a listening socket, also one kept across a reload."""
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
    if listen.multipath:
        proto = IPPROTO_MPTCP
    elif listen.family == socket.AF_UNIX:
        proto = 0
    else:
        # asyncio's own loop sets TCP_NODELAY only on sockets that say IPPROTO_TCP (an
        # accepted socket inherits the listening socket's protocol number)
        proto = socket.IPPROTO_TCP
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


def open_listen(listen: Listen, *, tries: int = 1, log=None) -> socket.socket:
    """A bound, listening socket; ConfigError in nginx's words on failure.

    With ``tries`` > 1 an address in use is tried again every 500 ms, as nginx's
    master does at start; ``log(level, message)`` receives nginx's lines meanwhile.
    """
    for attempt in range(1, tries + 1):
        try:
            sock = bind_listen(listen)
            sock.listen(listen.backlog)
            return sock
        except OSError as exc:
            error = _bind_error(listen, exc)
            if exc.errno != errno.EADDRINUSE or tries == 1:
                raise error from None
            if log is not None:
                log("emerg", str(error))
                if attempt < tries:
                    log("notice", "try again to bind() after 500ms")
            if attempt < tries:
                time.sleep(BIND_RETRY_DELAY)
    raise ConfigError("still could not bind()")


def open_listen_sockets(config: Config, *, tries: int = 1, log=None
                        ) -> list[tuple[ListenSocket, socket.socket]]:
    """Bind and listen on every socket of the configuration; ConfigError on failure."""
    opened: list[tuple[ListenSocket, socket.socket]] = []
    try:
        for entry in config.listen_sockets():
            opened.append((entry, open_listen(entry.listen, tries=tries, log=log)))
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
