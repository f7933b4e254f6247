"""Target ``proxy_protocol``: the inbound PROXY v1/v2 header, realip, and the outbound header.

With ``listen ... proxy_protocol`` the first bytes of a connection are a PROXY header
from a load balancer, or anything a client sends instead.  The session reads them with
``parse_first_read`` (one peek, as nginx 1.23.3+) and hands the header to realip
(``set_real_ip_from``), which parses the source address text the nginx way.  Towards
the backend mailgate writes its own header, with TLS facts the client chose (SNI, the
certificate's CN) in v2's TLVs.

Input: any bytes, as the first read of a connection; the same bytes also make the
kind (v1, v2, v2 with TLS), addresses, ports and TLS facts of an outbound header.

Contract: ``parse`` returns None (more bytes needed), a ``ProxyHeader`` or a
``ProxyHeaderError`` and never raises; more bytes never change a result (but the text
of a ``broken header``); ``parse_first_read`` gives ``parse``'s result or an error;
a header's length is within the bytes read and the peek, its ports 0-65535, its TLVs
readable; realip gives None or a printable address with the header's port, which
parses back to the same address; every outbound header parses back with its ports.
"""

from __future__ import annotations

import ipaddress
import struct

from mailgate.inet import format_ip, parse_ip
from mailgate.proxy.proxy_protocol import (
    PEEK_MAX,
    ProxyHeader,
    ProxyHeaderError,
    TLSFacts,
    build_v1,
    build_v2,
    crc32c,
    parse,
    parse_first_read,
)
from mailgate.proxy.realip import realip_for

# every peer is trusted: the header's source is always parsed
REALIP = realip_for(("0.0.0.0/0", "::/0", "unix:"))

DICTIONARY = (
    b"PROXY ", b"TCP4 ", b"TCP6 ", b"UNKNOWN", b"\r\n", b"\r\n\r\n\x00\r\nQUIT\n",
    b"\x21\x11", b"\x21\x21", b"\x20\x00", b"\x21\x12", b"\x00\x0c", b"\x00\x24",
    b"127.0.0.1 ", b"::1 ", b"::ffff:", b"255.255.255.255", b"65535 ", b"65536",
    b"0192.0.2.7", b"\x03\x00\x04", b"\x20\x00\x05",
)


def _cuts(size: int) -> range:
    # every prefix of a short input, about sixteen of a longer one
    return range(size) if size <= 48 else range(0, size, size // 16)


def _check_header(header: ProxyHeader, data: bytes) -> None:
    assert 1 <= header.length <= min(len(data), PEEK_MAX) and header.version in (1, 2)
    assert (header.source is None) == (header.destination is None) == (header.addresses is None)
    if header.source is not None:
        assert 0 <= header.source.port <= 65535 and 0 <= header.destination.port <= 65535
    for kind in set(header.tlvs[:1]) | {1, 2, 3, 0x20}:
        value = header.tlv(kind)
        assert value is None or isinstance(value, bytes)
    real = REALIP.client(header, "127.0.0.1")
    if real is not None:
        text, port = real
        assert port == header.source.port
        assert parse_ip(text) == parse_ip(header.source.address)


def _check_outbound(data: bytes) -> None:
    """A header built from the input's addresses and TLS facts parses back."""
    if len(data) < 36:
        return
    v4 = data[0] & 1
    source = ipaddress.ip_address(data[4:8] if v4 else data[4:20])
    destination = ipaddress.ip_address(data[20:24] if data[0] & 2 else data[20:36])
    client = (format_ip(source), struct.unpack("!H", data[:2])[0])
    local = (format_ip(destination), struct.unpack("!H", data[2:4])[0])
    rest = data[36:]
    tls = TLSFacts(sni=rest[:300], alpn=rest[300:320] or None, cn=rest[320:],
                   has_cert=bool(data[0] & 4), verify_result=data[1], resumed=bool(data[0] & 8),
                   version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256")
    # one kind of header per input (bits 4-5): a long v2 header's CRC32C is costly
    kind = data[0] >> 4 & 3
    header = (build_v1(client, local) if kind == 0 else build_v2(client, local) if kind == 1
              else build_v2(client, local, tls))
    parsed = parse(header)
    assert isinstance(parsed, ProxyHeader) and parsed.length == len(header), parsed
    assert (parsed.source.port, parsed.destination.port) == (client[1], local[1])
    if parsed.version == 2:
        crc = parsed.tlv(3)
        assert crc is not None and struct.unpack("!I", crc)[0] == crc32c(
            header[:-4] + b"\0\0\0\0")


def one_input(data: bytes) -> None:
    """Read ``data`` as the first bytes of a connection with ``proxy_protocol``."""
    result = parse(data)
    first = parse_first_read(data)
    assert isinstance(first, (ProxyHeader, ProxyHeaderError)), first
    if result is None:
        assert isinstance(first, ProxyHeaderError)
    else:
        assert first == result
        for cut in _cuts(len(data)):
            early = parse(data[:cut])
            if isinstance(early, ProxyHeaderError) and (early.message or "").startswith(
                    "broken header"):
                assert isinstance(result, ProxyHeaderError) and result.message.startswith(
                    "broken header"), (cut, early, result)
            else:
                assert early is None or early == result, (cut, early, result)
    if isinstance(result, ProxyHeader):
        _check_header(result, data)
    _check_outbound(data)
