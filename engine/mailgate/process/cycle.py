"""A configuration made ready to serve, as the master prepares it before forking.

nginx calls it a cycle: the configuration, its open log files, its listening
sockets and its shared zones.  A reload makes a new cycle from the previous
one: a socket whose address is unchanged is carried over (connections waiting
in its queue are not lost), new addresses are bound, and the sockets the new
configuration no longer has are closed once the new cycle stands.  Anything
wrong leaves the previous cycle untouched.
"""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailgate.config import Config, ConfigError, ConfigMessage, Listen
from mailgate.log import ErrorLog, LogFiles
from mailgate.oserror import os_error_text
from mailgate.process.listeners import BIND_TRIES, configure_listen, open_listen

if TYPE_CHECKING:
    from mailgate.tls import TLSContext
    from mailgate.tls.zones import SessionZones

__all__ = ["Cycle", "check_worker_connections"]

OnMessage = Callable[[ConfigMessage], None]


def _key(listen: Listen) -> tuple:
    return (listen.family, listen.sockaddr)


def check_worker_connections(config: Config) -> None:
    """nginx's check that a worker has connections left once it holds every listening socket."""
    listening = len(config.listen_sockets())
    if config.main.worker_connections < listening + 1:
        raise ConfigError("%d worker_connections are not enough for %d listening sockets"
                          % (config.main.worker_connections, listening))


def _open_logs(config: Config) -> tuple[LogFiles, ErrorLog]:
    """Open every error_log and access_log file of the configuration (the workers
    inherit them)."""
    files = LogFiles()
    try:
        log = ErrorLog(config.main.error_log, files)
        for server in config.servers:
            ErrorLog(server.error_log, files)
        for path in _access_log_paths(config):
            files.get(path)
    except OSError as exc:
        files.close()
        raise ConfigError('open() "%s" failed %s' % (exc.filename, os_error_text(exc))) from None
    return files, log


@dataclass(eq=False)
class Cycle:
    """The prepared configuration; ``sockets`` align with ``config.listen_sockets()``."""

    config: Config
    log_files: LogFiles
    log: ErrorLog
    sockets: list[socket.socket]
    zones: SessionZones
    contexts: tuple[TLSContext | None, ...] | None = None

    @classmethod
    def open(cls, config: Config, zones, previous: Cycle | None = None,
             on_message: OnMessage | None = None) -> Cycle:
        """Prepare ``config``: logs, TLS check, sockets, zones; ConfigError on any failure.

        ``zones`` is the master's ``SessionZones``, configured here last, so a
        failure before leaves it as the previous cycle uses it.
        """
        from mailgate.proxy.session_store import check_packages
        from mailgate.tls import build_client_contexts, build_contexts

        check_worker_connections(config)
        log_files, log = _open_logs(config)

        def report(level: str, message: str) -> None:
            # the retried binds are reported where the configuration's messages go
            if on_message is not None:
                on_message(ConfigMessage(level, message))

        fresh: list[socket.socket] = []
        try:
            # the TLS contexts (the server's and the client-side ones) are built (and thrown
            # away) to find a bad certificate or key before any worker starts (and the
            # packages a session store needs); the shared zones are not touched yet
            check_packages(build_contexts(config, on_message=on_message))
            build_client_contexts(config, on_message=on_message)
            inherited = {_key(e.listen): s for e, s in zip(previous.config.listen_sockets(),
                                                           previous.sockets)} if previous else {}
            sockets = []
            for entry in config.listen_sockets():
                listen = entry.listen
                sock = inherited.pop(_key(listen), None)
                if sock is None:
                    sock = open_listen(listen, tries=BIND_TRIES, log=report)
                    fresh.append(sock)
                else:
                    try:
                        configure_listen(sock, listen)
                        sock.listen(listen.backlog)  # a kept socket takes the new backlog
                    except OSError as exc:
                        raise ConfigError("listen() to %s failed %s"
                                          % (listen.addr_text, os_error_text(exc))) from None
                sockets.append(sock)
            zones.configure(config)
            # built once, before the workers fork, so that they share them
            contexts = build_contexts(config, zones)
        except BaseException:
            for sock in fresh:
                _close_socket(sock, unlink=True)
            log_files.close()
            raise
        return cls(config, log_files, log, sockets, zones, contexts)

    def release(self, successor: Cycle | None = None) -> None:
        """Close what ``successor`` did not take over: sockets (unix paths removed) and logs."""
        kept = {id(sock) for sock in successor.sockets} if successor else set()
        for sock in self.sockets:
            if id(sock) not in kept:
                if successor is not None and sock.family == socket.AF_UNIX:
                    self.log.log("warn", "deleting socket %s" % sock.getsockname())
                _close_socket(sock, unlink=True)
        self.sockets = []
        self.log_files.close()

    def close_listening(self) -> None:
        """Close the master's listening sockets (graceful stop: the workers hold their own)."""
        for sock in self.sockets:
            _close_socket(sock, unlink=True)
        self.sockets = []

    def logs_to_stderr(self) -> bool:
        """Whether the main error_log writes to stderr itself."""
        return any(target.kind == "stderr" for target in self.config.main.error_log)

    def uses_stderr(self) -> bool:
        """Whether any error_log, at any level, writes to stderr: nginx's
        ``cycle->log_use_stderr``, set by every ``error_log stderr`` (ngx_log_set_log())."""
        return self.logs_to_stderr() or any(
            target.kind == "stderr" for server in self.config.servers for target in server.error_log)

    def first_log_file(self) -> int | None:
        """The descriptor of the main error_log's first file, where stderr is sent; None
        when an error_log writes to stderr itself (ngx_log_redirect_stderr())."""
        if self.uses_stderr():
            return None
        path = next((t.path for t in self.config.main.error_log if t.kind == "file"), None)
        return None if path is None else self.log_files.get(path).fd

    def reopen_logs(self) -> None:
        """USR1 in the master: reopen every log file; with ``user``, hand new files to that
        user so that the workers can reopen them too (nginx's chown)."""
        self.log_files.reopen()
        user = self.config.main.user
        if os.geteuid() != 0:
            return
        try:
            uid = pwd.getpwnam(user[0]).pw_uid
        except KeyError:
            self.log.log("alert", 'getpwnam("%s") failed' % user[0])
            return
        targets = [*self.config.main.error_log,
                   *(t for server in self.config.servers for t in server.error_log)]
        paths = {t.path for t in targets if t.kind == "file"} | _access_log_paths(self.config)
        for path in paths:
            try:
                if os.stat(path).st_uid != uid:
                    os.chown(path, uid, -1)
            except OSError as exc:
                self.log.log("alert", 'chown("%s", %d) failed %s' % (path, uid, os_error_text(exc)))


def _access_log_paths(config: Config) -> set[str]:
    return {t.path for server in config.servers for t in server.access_log if t.path}


def _close_socket(sock: socket.socket, unlink: bool) -> None:
    path = sock.getsockname() if sock.family == socket.AF_UNIX and sock.fileno() >= 0 else None
    sock.close()
    if unlink and path:
        try:
            os.unlink(path)
        except OSError:
            pass
