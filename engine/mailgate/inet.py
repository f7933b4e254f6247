"""Addresses as nginx reads and prints them: mailgate's ``src/core/ngx_inet.c``.

The address rules the configuration, the protocol machines and the proxy share:

* :func:`parse_ip` reads an address the way ``ngx_parse_addr`` does (``ngx_inet_addr``,
  then ``ngx_inet6_addr``): the text a peer sent, such as a PROXY header's source;
  :func:`peer_ip` reads the kernel's own text (``getpeername``, DNS answers);
* :func:`format_ip` prints an address as ``ngx_inet_ntop`` does, :func:`sock_ntop` and
  :func:`sockaddr_text` a socket address as ``ngx_sock_ntop`` does (``1.2.3.4:25``,
  ``[::1]:25``, ``unix:/path``);
* :func:`sockaddr_family` and :func:`sockaddr_ip` read a socket address in the form
  Python gives it (a transport's ``peername``/``sockname``);
* :func:`ptocidr` and :class:`CIDRList` are ``ngx_ptocidr`` and ``ngx_cidr_match``;
* :data:`UNAVAILABLE` and :data:`TEMPUNAVAIL` are the SMTP client host placeholders.

nginx's own address text routines differ from Python's ``ipaddress`` at the edges:
nginx prints IPv4-mapped and IPv4-compatible IPv6 addresses with a dotted tail
(``::ffff:192.0.2.7``), accepts octets with leading zeros (``0192.0.2.7``) and empty
octets (``1..2.3``), and cannot parse ``255.255.255.255`` (it is ``INADDR_NONE``).

This module imports nothing of mailgate: the configuration, the protocol machines and
the proxy all build on it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

__all__ = [
    "TEMPUNAVAIL",
    "UNAVAILABLE",
    "CIDRList",
    "IPAddress",
    "IPNetwork",
    "SockAddr",
    "format_ip",
    "parse_ip",
    "peer_ip",
    "ptocidr",
    "sock_ntop",
    "sockaddr_family",
    "sockaddr_ip",
    "sockaddr_text",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: A socket address in the form Python gives it (``getpeername``/``getsockname``, a
#: transport's ``peername``/``sockname``): ``(host, port)`` for AF_INET, ``(host, port,
#: flowinfo, scope_id)`` for AF_INET6, the path for AF_UNIX (a str, bytes for an abstract
#: name, empty for an unnamed socket).
SockAddr = tuple | str | bytes

# The SMTP client's host when it has no name: ngx_mail_smtp_handler.c's
# smtp_unavailable (no resolver, a name that does not resolve back to the client) and
# smtp_tempunavail (a UNIX-socket client, a failed lookup).  Text, as every name the
# resolver finds is and as AuthFacts.client_host hands it to an embedder's auth
# callable; the two wires that carry it (XCLIENT NAME=, the Client-Host header) encode
# it where they are written.
UNAVAILABLE = "[UNAVAILABLE]"
TEMPUNAVAIL = "[TEMPUNAVAIL]"

_INADDR_NONE = 0xFFFFFFFF
_HEX = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}


# -- parsing -----------------------------------------------------------------------------


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


def peer_ip(text: str) -> IPAddress | None:
    """A socket's address text (``getpeername``'s, maybe with ``%scope``) as an address."""
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


# -- printing ----------------------------------------------------------------------------


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
        out.append(f"{p[12]}.{p[13]}.{p[14]}.{p[15]}")
    return "".join(out)


def format_ip(address: IPAddress) -> str:
    """The address as nginx prints it (``ngx_inet_ntop``; no brackets, no port)."""
    if address.version == 4:
        return str(address)
    return _inet6_ntop(address.packed)


def sock_ntop(family: int, host: str, port: int) -> str:
    """``ngx_sock_ntop`` with the port: ``1.2.3.4:25``, ``[::1]:25``, ``unix:/p``.

    ``host`` is printed as it is given (an IP text, or the path of a UNIX socket).
    """
    if family == socket.AF_UNIX:
        return "unix:" + host
    if family == socket.AF_INET6:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


# -- socket addresses as Python gives them ---------------------------------------------


def sockaddr_family(addr: SockAddr) -> int:
    """AF_INET, AF_INET6 or AF_UNIX: the family of a socket address."""
    if not isinstance(addr, tuple):
        return socket.AF_UNIX
    return socket.AF_INET6 if ":" in addr[0] else socket.AF_INET


def sockaddr_ip(addr: SockAddr) -> IPAddress | None:
    """The IP address of an AF_INET/AF_INET6 socket address; None for AF_UNIX.

    Raises ValueError when a ``(host, port)`` pair's host is not an IP address.
    """
    if not isinstance(addr, tuple):
        return None
    address = peer_ip(addr[0])
    if address is None:
        raise ValueError(f"not an IP address: {addr[0]!r}")
    return address


def sockaddr_text(addr: SockAddr) -> str:
    """``ngx_sock_ntop`` of a socket address, with the port; the IP text as the socket
    gave it, and for AF_UNIX the path up to its first NUL (``unix:`` for an unnamed or
    abstract socket)."""
    if isinstance(addr, tuple):
        return sock_ntop(sockaddr_family(addr), addr[0], addr[1])
    path = addr if isinstance(addr, str) else addr.decode("latin-1")
    return sock_ntop(socket.AF_UNIX, path.partition("\0")[0], 0)


# -- CIDR ----------------------------------------------------------------------------------


def ptocidr(text: str) -> tuple[IPNetwork, bool] | None:
    """``ngx_ptocidr``: an address or ``address/bits`` as a network, and whether the
    address had bits set beyond the mask (nginx's NGX_DONE: they are dropped); None when
    the text is not one.

    The text is read by Python's ``ipaddress``, stricter than ``ngx_inet_addr`` (no
    leading zeros, no empty octets).
    """
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return network, "/" in text and network.network_address != ipaddress.ip_interface(text).ip


class CIDRList:
    """A compiled list of ``set_real_ip_from``-style entries, matched as ``ngx_cidr_match``.

    ``entries`` are CIDR texts (``127.0.0.1/32``, ``2001:db8::/32``) or ``"unix:"``,
    which matches UNIX-socket peers.  An IPv4-mapped IPv6 peer matches IPv4 entries only.
    """

    __slots__ = ("_configured", "_unix", "_v4", "_v6")

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
            cidr = ptocidr(entry)
            if cidr is None:
                raise ValueError(f"not an address or CIDR: {entry!r}")
            network = cidr[0]
            (v4 if network.version == 4 else v6).append(network)
        self._v4 = tuple(v4)
        self._v6 = tuple(v6)
        self._unix = unix
        self._configured = configured

    def __bool__(self) -> bool:
        return self._configured

    def match(self, peer: str | None) -> bool:
        """True if the peer (its IP text; None for a UNIX-socket peer) is listed."""
        if peer is None:
            return self._unix
        address = peer_ip(peer)
        if address is None:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        networks = self._v4 if address.version == 4 else self._v6
        return any(address in network for network in networks)
