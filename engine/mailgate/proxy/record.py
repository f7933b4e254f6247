"""What is known of a session when it ends: ``SessionRecord``, the access log's facts.

A record is made once per finished session, and only when someone wants it (an
``access_log``, or an embedder's ``on_session`` callable).  ``getter(name)`` gives the
function of an access log variable's value: bytes, or None when the session has none
(the log shows ``-``, as nginx shows a variable that is not found).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from mailgate.config.modules.mail_log import VARIABLES

__all__ = ["SessionRecord", "getter", "session_record"]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One finished session.  Times are seconds since the epoch; durations seconds;
    absent facts are None (no TLS, no login, no backend ...)."""

    connection: int  #: the session's number in its worker (nginx's ``*N``)
    pid: int  #: the worker's process ID
    protocol: str
    remote_addr: str  #: the client (the PROXY protocol's when realip trusts it)
    remote_port: int | None
    proxy_protocol_addr: str | None
    server_addr: str | None
    server_port: int | None
    server_name: str
    login: bytes | None
    auth_status: str | None  #: ok, failed, error, wait: the last auth answer
    upstream_addr: str | None
    upstream_connect_time: float | None
    start: float
    end: float
    bytes_sent: int  #: to the client, on its connection (TLS records included)
    bytes_received: int  #: from the client, on its connection
    ssl_protocol: str | None
    ssl_cipher: str | None
    ssl_session_reused: bool | None
    ssl_server_name: str | None
    ssl_client_s_dn: str | None
    outcome: str  #: the stats' outcome (proxied, auth_failed, timeout ...)
    close_reason: str  #: what ended it: client_closed, backend_closed, timeout, or the outcome

    @property
    def session_time(self) -> float:
        return self.end - self.start


def session_record(session) -> SessionRecord:
    """The record of ``session`` (a ``ClientSession``), now that it ends: read before its
    TLS stream and transport are let go."""
    tls = session.tls
    done = tls is not None and tls.handshake_done
    transport = session.transport
    local = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(local, tuple):
        server_addr, server_port = local[0], local[1]
    else:
        server_addr, server_port = ("unix:" if local is not None else None), None
    config = session.runtime.config
    subject = None
    if done and config.ssl_verify_client != "off":
        subject = tls.client_certificate().subject
    ctx = session.ctx
    login = session.machine.login if session.machine is not None else ctx.login if ctx else b""
    proxied = session.proxy_addresses
    return SessionRecord(
        connection=session.number, pid=os.getpid(), protocol=config.protocol,
        remote_addr=session.client_address,
        remote_port=None if session.unix else session.client_port,
        proxy_protocol_addr=proxied.source_address if proxied is not None else None,
        server_addr=server_addr, server_port=server_port, server_name=config.server_name,
        login=login or None, auth_status=session.auth_status,
        upstream_addr=ctx.upstream if ctx is not None else None,
        upstream_connect_time=session.upstream_connect_time,
        start=session.started, end=time.time(),
        bytes_sent=session.bytes_sent, bytes_received=session.bytes_received,
        ssl_protocol=tls.protocol if done else None, ssl_cipher=tls.cipher if done else None,
        ssl_session_reused=tls.session_reused if done else None,
        ssl_server_name=tls.server_name if done else None, ssl_client_s_dn=subject,
        outcome=session.outcome, close_reason=session.close_reason or session.outcome)


def _text(item) -> bytes | None:
    return None if item is None else str(item).encode("utf-8", "surrogateescape")


def _seconds(item: float | None) -> bytes | None:
    return None if item is None else b"%.3f" % item


class _SecondCache:
    """A time's text, made once per second (as nginx keeps its time strings cached)."""

    __slots__ = ("make", "second", "text")

    def __init__(self, make: Callable[[time.struct_time], bytes]):
        self.make = make
        self.second = -1
        self.text = b""

    def __call__(self, when: float) -> bytes:
        second = int(when)
        if second != self.second:
            self.second, self.text = second, self.make(time.localtime(second))
        return self.text


def _iso8601(moment: time.struct_time) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", moment)
    return (stamp[:-2] + ":" + stamp[-2:]).encode()  # nginx's +00:00


_time_local = _SecondCache(lambda moment: time.strftime("%d/%b/%Y:%H:%M:%S %z", moment).encode())
_time_iso8601 = _SecondCache(_iso8601)


_GETTERS: dict[str, Callable[[SessionRecord], bytes | None]] = {
    "time_local": lambda r: _time_local(r.end),
    "time_iso8601": lambda r: _time_iso8601(r.end),
    "msec": lambda r: b"%.3f" % r.end,
    "connection": lambda r: b"%d" % r.connection,
    "pid": lambda r: b"%d" % r.pid,
    "remote_addr": lambda r: _text(r.remote_addr),
    "remote_port": lambda r: _text(r.remote_port),
    "proxy_protocol_addr": lambda r: _text(r.proxy_protocol_addr),
    "server_addr": lambda r: _text(r.server_addr),
    "server_port": lambda r: _text(r.server_port),
    "server_name": lambda r: _text(r.server_name),
    "protocol": lambda r: r.protocol.encode(),
    "login": lambda r: r.login or None,
    "auth_status": lambda r: _text(r.auth_status),
    "upstream_addr": lambda r: _text(r.upstream_addr),
    "upstream_connect_time": lambda r: _seconds(r.upstream_connect_time),
    "session_time": lambda r: _seconds(r.session_time),
    "bytes_sent": lambda r: b"%d" % r.bytes_sent,
    "bytes_received": lambda r: b"%d" % r.bytes_received,
    "ssl_protocol": lambda r: _text(r.ssl_protocol),
    "ssl_cipher": lambda r: _text(r.ssl_cipher),
    # nginx's $ssl_session_reused: "r" when reused, "." otherwise
    "ssl_session_reused": lambda r: None if r.ssl_session_reused is None
    else (b"r" if r.ssl_session_reused else b"."),
    "ssl_server_name": lambda r: _text(r.ssl_server_name),
    "ssl_client_s_dn": lambda r: _text(r.ssl_client_s_dn),
    "close_reason": lambda r: r.close_reason.encode(),
}
assert set(_GETTERS) == set(VARIABLES), "every access log variable has a value"


def getter(name: str) -> Callable[[SessionRecord], bytes | None]:
    """The function giving access log variable ``name``'s value of a record (bytes as
    logged, before escaping; None when the session has none)."""
    return _GETTERS[name]
