"""Addresses in directives (``listen``, ``auth_http``, ``resolver``), as ``ngx_parse_url``.

``parse_url`` splits ``host[:port][/uri]``, ``[v6][:port]``, ``unix:/path[:uri]`` and,
for ``listen``, a bare port or a port range; it resolves host names at load time and
returns every address.  Errors carry nginx's short texts (``invalid port``, ``invalid
host``, ``host not found`` ...), which each directive words into its own message.
Addresses are printed by :func:`mailgate.inet.sock_ntop`.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from mailgate.config.values import atoi
from mailgate.inet import format_ip, parse_ip, sock_ntop

__all__ = ["AddressError", "Address", "ParsedURL", "parse_url"]

_SUN_PATH_MAX = 108  # sizeof(sockaddr_un.sun_path) on Linux


class AddressError(ValueError):
    """nginx's ``u->err`` text for an address it cannot take."""


@dataclass(frozen=True)
class Address:
    """One resolved address: family, IP text (or unix path) and port."""

    family: int
    host: str
    port: int

    @property
    def text(self) -> str:
        return sock_ntop(self.family, self.host, self.port)


@dataclass(frozen=True)
class ParsedURL:
    """What ``parse_url`` found: the host as written, port(s), uri and addresses."""

    host: str
    port: int
    last_port: int
    no_port: bool
    uri: str
    wildcard: bool
    addresses: tuple[Address, ...]


def _port(text: str, *, listen: bool) -> tuple[int, int]:
    """A port, or for ``listen`` a ``first-last`` range; returns (first, last or 0)."""
    last_port = 0
    if listen and "-" in text:
        first_text, _, last_text = text.partition("-")
        last = atoi(last_text)
        if last is None or not 1 <= last <= 65535:
            raise AddressError("invalid port")
        last_port = last
        text = first_text
    port = atoi(text)
    if port is None or not 1 <= port <= 65535:
        raise AddressError("invalid port")
    if last_port and port > last_port:
        raise AddressError("invalid port range")
    return port, last_port


def _resolve(host: str, port: int) -> tuple[Address, ...]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise AddressError("host not found") from None
    found: list[Address] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = Address(family, sockaddr[0], port)
        if address not in found:  # a name may resolve to the same address twice
            found.append(address)
    if not found:
        raise AddressError("host not found")
    return tuple(found)


def _parse_unix(url: str, *, uri_part: bool) -> ParsedURL:
    path, uri = url[5:], ""
    if uri_part and ":" in path:
        path, _, uri = path.partition(":")
    if not path:
        raise AddressError("no path in the unix domain socket")
    # the path's bytes as read (a configuration's invalid UTF-8 is kept as surrogates)
    if len(path.encode("utf-8", "surrogateescape")) + 1 > _SUN_PATH_MAX:
        raise AddressError("too long path in the unix domain socket")
    return ParsedURL(path, 0, 0, True, uri, False, (Address(socket.AF_UNIX, path, 0),))


def _parse_inet6(url: str, *, listen: bool, uri_part: bool, default_port: int) -> ParsedURL:
    close = url.find("]")
    if close < 0:
        raise AddressError("invalid host")
    rest, uri = url[close + 1 :], ""
    if "/" in rest:
        if listen or not uri_part:
            raise AddressError("invalid host")
        rest, uri = rest[: rest.index("/")], rest[rest.index("/") :]
    port, last_port, no_port = default_port, 0, True
    if rest:
        if rest[0] != ":":
            raise AddressError("invalid host")
        port, last_port = _port(rest[1:], listen=listen)
        no_port = False
    host = url[1:close]
    if not host:
        raise AddressError("no host")
    ip = parse_ip(host)  # ngx_inet6_addr(): no scope, no IPv4 alone
    if ip is None or ip.version != 6:
        raise AddressError("invalid IPv6 address")
    return ParsedURL(
        url[: close + 1], port, last_port, no_port, uri, ip.is_unspecified,
        (Address(socket.AF_INET6, format_ip(ip), port),),
    )


def _parse_inet(url: str, *, listen: bool, uri_part: bool, default_port: int) -> ParsedURL:
    colon = url.find(":")
    slash = url.find("/", colon if colon >= 0 else 0)
    query = url.find("?")
    uri_at = slash
    if query >= 0 and (uri_at < 0 or query < uri_at):
        uri_at = query
    host_part, uri = url, ""
    if uri_at >= 0:
        if listen or not uri_part:
            raise AddressError("invalid host")
        host_part, uri = url[:uri_at], url[uri_at:]
        if uri_at < colon:
            colon = -1
    port, last_port, no_port = default_port, 0, True
    if colon >= 0:
        port, last_port = _port(host_part[colon + 1 :], listen=listen)
        host_part = host_part[:colon]
        no_port = False
    elif listen and uri_at < 0:
        # "listen 143" or "listen 6000-6005": a port alone means every IPv4 address;
        # a non-numeric range end makes the whole word a host name, as in nginx.
        first, dash, last = host_part.partition("-")
        if (not dash or atoi(last) is not None) and atoi(first) is not None:
            port, last_port = _port(host_part, listen=True)
            return ParsedURL(
                "*", port, last_port, False, "", True, (Address(socket.AF_INET, "0.0.0.0", port),)
            )
    if not host_part:
        raise AddressError("no host")
    if listen and host_part == "*":
        return ParsedURL(
            "*", port, last_port, no_port, uri, True, (Address(socket.AF_INET, "0.0.0.0", port),)
        )
    ip = parse_ip(host_part)  # ngx_inet_addr(): "0127.0.0.1" is 127.0.0.1, as nginx reads it
    if ip is None or ip.version != 4:
        addresses = _resolve(host_part, port)
        wildcard = addresses[0].host in ("0.0.0.0", "::")
        return ParsedURL(host_part, port, last_port, no_port, uri, wildcard, addresses)
    return ParsedURL(
        host_part, port, last_port, no_port, uri, ip.is_unspecified,
        (Address(socket.AF_INET, format_ip(ip), port),),
    )


def parse_url(
    url: str, *, listen: bool = False, uri_part: bool = False, default_port: int = 0
) -> ParsedURL:
    """Parse an address the way ``ngx_parse_url`` does; raise AddressError."""
    if url[:5].lower() == "unix:":
        return _parse_unix(url, uri_part=uri_part)
    if url.startswith("["):
        return _parse_inet6(url, listen=listen, uri_part=uri_part, default_port=default_port)
    return _parse_inet(url, listen=listen, uri_part=uri_part, default_port=default_port)
