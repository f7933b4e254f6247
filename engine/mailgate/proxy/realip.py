"""The realip decision: whether a PROXY header's source replaces the client address.

As ``ngx_mail_realip_module`` (with ``ngx_mail_proxy_protocol_handler``) decides it:
only when a header with a source was read, ``set_real_ip_from`` is configured, the TCP
peer matches one of its entries (``ngx_cidr_match``: ``unix:`` for UNIX-socket peers;
an IPv4-mapped IPv6 peer matches IPv4 entries only), and the header's source parses as
an address (``ngx_parse_addr``).  The substituted address is printed the nginx way, so
that ``Client-IP``, XCLIENT ``ADDR``, log lines and the PROXY header sent to the
backend carry nginx's text.  The address rules themselves are in :mod:`mailgate.inet`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Protocol

from mailgate.inet import CIDRList, format_ip, parse_ip

__all__ = ["RealIP", "realip_for"]


class _Source(Protocol):
    @property
    def address(self) -> str: ...

    @property
    def port(self) -> int: ...


class _Header(Protocol):
    """What realip reads of an inbound PROXY header (``proxy_protocol.ProxyHeader``)."""

    @property
    def source(self) -> _Source | None: ...


class RealIP:
    """The compiled ``set_real_ip_from`` list of one server.

    ``entries`` are the configuration's strings: CIDR texts (``127.0.0.1/32``,
    ``2001:db8::/32``) or ``"unix:"``.
    """

    __slots__ = ("_from",)

    def __init__(self, entries: Iterable[str]) -> None:
        self._from = CIDRList(entries)

    def __bool__(self) -> bool:
        return bool(self._from)

    def trusts(self, peer: str | None) -> bool:
        """True if the TCP peer (its IP text; None for a UNIX-socket peer) is listed."""
        return self._from.match(peer)

    def client(self, header: _Header | None, peer: str | None) -> tuple[str, int] | None:
        """The realip-substituted client ``(address text, port)``, or None to keep the peer.

        ``header`` is the PROXY header read on this connection (None when none was
        read); ``peer`` is the TCP peer's IP text, or None for a UNIX-socket peer.
        """
        if header is None or header.source is None or not self._from:
            return None
        if not self._from.match(peer):
            return None
        address = parse_ip(header.source.address)
        if address is None:
            return None
        return format_ip(address), header.source.port


@functools.lru_cache(maxsize=64)
def realip_for(entries: tuple[str, ...]) -> RealIP:
    """The compiled :class:`RealIP` of a server's ``set_real_ip_from`` tuple (cached)."""
    return RealIP(entries)
