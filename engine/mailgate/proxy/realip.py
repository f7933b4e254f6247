"""Client addresses as nginx reads and prints them, and the realip decision (SPEC §11).

nginx has its own address text routines (``ngx_inet_addr``, ``ngx_inet6_addr``,
``ngx_inet6_ntop``) whose results differ from Python's ``ipaddress`` at the edges:
nginx prints IPv4-mapped and IPv4-compatible IPv6 addresses with a dotted tail
(``::ffff:192.0.2.7``), accepts octets with leading zeros (``0192.0.2.7``) and empty
octets (``1..2.3``), and cannot parse ``255.255.255.255`` (it is ``INADDR_NONE``).  The
address of a PROXY header is parsed, and every client address is printed, the nginx
way here, so that ``Client-IP``, XCLIENT ``ADDR``, log lines and the PROXY header sent
to the backend carry nginx's text.

:class:`RealIP` decides whether a PROXY header's source replaces the client address:
only when a header with a source was read, ``set_real_ip_from`` is configured, the TCP
peer matches one of its entries (``unix:`` for UNIX-socket peers; an IPv4-mapped IPv6
peer matches IPv4 entries only, as ``ngx_cidr_match`` does), and the header's source
parses as an address.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from mailgate.proxy.proxy_protocol import ProxyHeader

__all__ = ["IPAddress", "RealIP", "format_ip", "parse_ip", "peer_ip", "realip_for"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_INADDR_NONE = 0xFFFFFFFF
_HEX = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}


def _inet_addr(text: bytes) -> int | None:
    """``ngx_inet_addr``: dotted quad (exactly three dots, octets 0-255) to an integer."""
    addr = octet = dots = 0
    for c in text:
        if 48 <= c <= 57:
            octet = octet * 10 + c - 48
            if octet > 255:
                return None
        elif c == 46:  # '.'
            addr = (addr << 8) + octet
            octet = 0
            dots += 1
        else:
            return None
    if dots != 3:
        return None
    return (addr << 8) + octet


def _inet6_addr(text: bytes) -> bytes | None:
    """``ngx_inet6_addr``: IPv6 text (one ``::``, optional dotted IPv4 tail) to 16 bytes."""
    if not text:
        return None
    out = bytearray(16)
    at = 0  # next byte of out to write
    zero = None  # where the "::" run goes
    tail = None  # start of the group after the last ':' (a possible IPv4 tail)
    nibbles = word = 0
    groups = 8
    i = 1 if text[0] == 58 else 0  # nginx skips one leading ':'
    end = len(text)
    while i < end:
        c = text[i]
        i += 1
        if c == 58:  # ':'
            if nibbles:
                tail = i
                out[at] = word >> 8
                out[at + 1] = word & 0xFF
                at += 2
                groups -= 1
                if groups:
                    nibbles = word = 0
                    continue
            elif zero is None:
                tail = i
                zero = at
                continue
            return None
        if c == 46 and nibbles:  # '.': the rest is an IPv4 address
            if groups < 2 or tail is None:
                return None
            word = _inet_addr(text[tail:])
            if word is None or word == _INADDR_NONE:
                return None
            out[at] = word >> 24
            out[at + 1] = (word >> 16) & 0xFF
            at += 2
            groups -= 1
            break
        nibbles += 1
        if nibbles > 4:
            return None
        value = _HEX.get(c)
        if value is None:
            return None
        word = word * 16 + value
    if nibbles == 0 and zero is None:
        return None
    out[at] = (word >> 8) & 0xFF
    out[at + 1] = word & 0xFF
    at += 2
    groups -= 1
    if groups:
        if zero is None:
            return None
        moved = bytes(out[zero:at])
        out[zero:] = bytes(16 - zero - len(moved)) + moved
        return bytes(out)
    return bytes(out) if zero is None else None


def parse_ip(text: str | bytes) -> IPAddress | None:
    """An address text parsed as ``ngx_parse_addr`` does (IPv4 first, then IPv6), or None."""
    if isinstance(text, str):
        try:
            text = text.encode("ascii")
        except UnicodeEncodeError:
            return None
    value = _inet_addr(text)
    if value is not None and value != _INADDR_NONE:
        return ipaddress.IPv4Address(value)
    packed = _inet6_addr(text)
    if packed is None:
        return None
    return ipaddress.IPv6Address(packed)


def _inet6_ntop(p: bytes) -> str:
    """``ngx_inet6_ntop``: the longest run (>= 2) of zero groups as ``::``; dotted tails."""
    zero = -1
    longest = 1
    run = 0
    start = -1
    for i in range(0, 16, 2):
        if p[i] or p[i + 1]:
            if longest < run:
                zero, longest = start, run
            run = 0
            continue
        if run == 0:
            start = i
        run += 1
    if longest < run:
        zero, longest = start, run
    out = []
    stop = 16
    if zero == 0:
        if ((longest == 5 and p[10] == 0xFF and p[11] == 0xFF) or longest == 6
                or (longest == 7 and p[14] != 0 and p[15] != 1)):
            stop = 12
        out.append(":")
    i = 0
    while i < stop:
        if i == zero:
            out.append(":")
            i += longest * 2
            continue
        out.append("%x" % (p[i] * 256 + p[i + 1]))
        if i < 14:
            out.append(":")
        i += 2
    if stop == 12:
        out.append("%d.%d.%d.%d" % (p[12], p[13], p[14], p[15]))
    return "".join(out)


def format_ip(address: IPAddress) -> str:
    """The address as nginx prints it (``ngx_inet_ntop``; no brackets, no port)."""
    if address.version == 4:
        return str(address)
    return _inet6_ntop(address.packed)


def peer_ip(text: str) -> IPAddress | None:
    """A socket peer's address text (``getpeername``'s, maybe with ``%scope``) as an address."""
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


class RealIP:
    """The compiled ``set_real_ip_from`` list of one server.

    ``entries`` are the configuration's strings: CIDR texts (``127.0.0.1/32``,
    ``2001:db8::/32``) or ``"unix:"``.
    """

    __slots__ = ("_v4", "_v6", "_unix", "_configured")

    def __init__(self, entries: Iterable[str]) -> None:
        v4: list[ipaddress.IPv4Network] = []
        v6: list[ipaddress.IPv6Network] = []
        unix = False
        configured = False
        for entry in entries:
            configured = True
            if entry == "unix:":
                unix = True
                continue
            network = ipaddress.ip_network(entry, strict=False)
            (v4 if network.version == 4 else v6).append(network)
        self._v4 = tuple(v4)
        self._v6 = tuple(v6)
        self._unix = unix
        self._configured = configured

    def __bool__(self) -> bool:
        return self._configured

    def trusts(self, peer: str | None) -> bool:
        """True if the TCP peer (its IP text; None for a UNIX-socket peer) is listed."""
        if peer is None:
            return self._unix
        address = peer_ip(peer)
        if address is None:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        networks = self._v4 if address.version == 4 else self._v6
        return any(address in network for network in networks)

    def client(self, header: "ProxyHeader | None", peer: str | None) -> tuple[str, int] | None:
        """The realip-substituted client ``(address text, port)``, or None to keep the peer.

        ``header`` is the PROXY header read on this connection (None when none was
        read); ``peer`` is the TCP peer's IP text, or None for a UNIX-socket peer.
        """
        if header is None or header.source is None or not self._configured:
            return None
        if not self.trusts(peer):
            return None
        address = parse_ip(header.source.address)
        if address is None:
            return None
        return format_ip(address), header.source.port


@functools.lru_cache(maxsize=64)
def realip_for(entries: tuple[str, ...]) -> RealIP:
    """The compiled :class:`RealIP` of a server's ``set_real_ip_from`` tuple (cached)."""
    return RealIP(entries)
