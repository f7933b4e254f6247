"""The PROXY protocol, sans-I/O: the inbound header (v1 and v2) and the backend's header.

Inbound (``listen ... proxy_protocol``), as nginx 1.23.3+ reads it
(ngx_mail_proxy_protocol_handler() in src/mail/ngx_mail_handler.c, with
ngx_proxy_protocol_read() and ngx_proxy_protocol_v2_read() in
src/core/ngx_proxy_protocol.c):

* :func:`parse` takes the bytes received so far and returns ``None`` while the header
  may still be completed by more bytes, a :class:`ProxyHeader` (with the number of
  bytes it took) once it is complete, or a :class:`ProxyHeaderError` carrying nginx's
  log line.  It never raises on any input.
* v1: ``PROXY TCP4|TCP6 src dst sport dport`` CRLF (addresses of hex digits, ``:`` and
  ``.`` only, kept as text; ports 0-65535 by ``ngx_atoi``), or ``PROXY UNKNOWN...`` CRLF.
  The header must end within :data:`V1_MAX_HEADER` (107) bytes, the limit of the PROXY
  protocol specification (HAProxy's doc/proxy-protocol.txt, section 2.1).
* v2: the 12-byte signature.  The PROXY command with STREAM transport over INET/INET6
  is interpreted (its TLVs are kept); LOCAL, UNSPEC and other families or transports
  are skipped whole, without addresses.  A length that cannot fit in nginx's 4096-byte
  peek is ``header is too large``.
* A broken header logs ``broken header: "..."`` with the bytes up to the first CR or
  LF, as nginx prints them, but with control bytes as ``\\xNN``
  (docs/differences.md#logging).

Outbound (``proxy_protocol on|v2`` to the backend, as
ngx_mail_proxy_send_proxy_protocol() in src/mail/ngx_mail_proxy_module.c sends it with
ngx_proxy_protocol_write() or ngx_proxy_protocol_v2_write()): :func:`outbound_header`
builds the v1 text or the v2 binary header, with the TLS facts passed in as plain
values (:class:`TLSFacts`), and the CRC32C TLV computed by :func:`crc32c`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from mailgate.auth.facts import ProxyAddresses
from mailgate.inet import SockAddr, format_ip, sockaddr_ip, sockaddr_text
from mailgate.log import printable

__all__ = [
    "PEEK_MAX",
    "ProxyAddress",
    "ProxyHeader",
    "ProxyHeaderError",
    "SIGNATURE",
    "TLSFacts",
    "V1_MAX_HEADER",
    "build_v1",
    "build_v2",
    "crc32c",
    "outbound_header",
    "parse",
    "parse_first_read",
]

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX_HEADER = 107  # the longest v1 line, CRLF included (proxy-protocol.txt, 2.1)
PEEK_MAX = 4096  # nginx 1.23.3+ peeks this much for the header
_V2_FIXED = 16  # signature, version/command, family/transport, length

# v2 TLV types (HAProxy's doc/proxy-protocol.txt, section 2.2)
PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_SUBTYPE_SSL_CN = 0x22
PP2_SUBTYPE_SSL_CIPHER = 0x23
PP2_SUBTYPE_SSL_SIG_ALG = 0x24
PP2_SUBTYPE_SSL_KEY_ALG = 0x25
PP2_CLIENT_SSL = 0x01
PP2_CLIENT_CERT_CONN = 0x02
PP2_CLIENT_CERT_SESS = 0x04
# A TLS value longer than this (only a client certificate's CN can be) is left out, so
# that the header always fits v2's 16-bit length.
MAX_TLV_VALUE = 1024

_ADDRESS_CHARS = frozenset(b"0123456789abcdefABCDEF:.")
_V4_MAPPED = b"\0" * 10 + b"\xff\xff"


# -- inbound -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProxyAddress:
    """One side of a PROXY header: the address text as nginx keeps it, and the port."""

    address: str
    port: int


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A complete inbound PROXY header.

    ``length`` is the number of bytes the header took (the session consumes exactly
    these).  ``source``/``destination`` are None for ``PROXY UNKNOWN`` and for v2
    headers that carry no usable addresses (LOCAL, UNSPEC, non-STREAM).  v1 addresses
    are the header's text verbatim; v2 addresses are printed as nginx prints them.
    ``tlvs`` holds the raw v2 TLV bytes after the addresses.
    """

    length: int
    version: int
    source: ProxyAddress | None = None
    destination: ProxyAddress | None = None
    tlvs: bytes = b""

    @property
    def addresses(self) -> ProxyAddresses | None:
        """The ``Proxy-Protocol-*`` facts for the auth request, or None without addresses."""
        if self.source is None or self.destination is None:
            return None
        return ProxyAddresses(self.source.address, self.source.port,
                              self.destination.address, self.destination.port)

    def tlv(self, kind: int) -> bytes | None:
        """The value of the first TLV of type ``kind``; None if absent or the TLVs are broken."""
        data = self.tlvs
        at = 0
        while at < len(data):
            if len(data) - at < 3:
                return None
            length = (data[at + 1] << 8) | data[at + 2]
            value = data[at + 3: at + 3 + length]
            if len(value) < length:
                return None
            if data[at] == kind:
                return value
            at += 3 + length
        return None


@dataclass(frozen=True, slots=True)
class ProxyHeaderError:
    """The header is broken: log ``message`` at ``error`` (if not None), then close.

    ``message`` is None where nginx closes without a log line (a v2 INET/INET6 header
    too short for its addresses).
    """

    message: str | None


def _broken(data: bytes) -> ProxyHeaderError:
    end = len(data)
    for stop in (data.find(b"\r"), data.find(b"\n")):
        if 0 <= stop < end:
            end = stop
    return ProxyHeaderError('broken header: "%s"' % printable(data[:end]))


class _NeedMore(Exception):
    """The v1 scanner ran out of bytes."""


class _Broken(Exception):
    """The v1 scanner met a byte nginx rejects."""


def _read_field(data: bytes, at: int, stop: int) -> tuple[bytes, int]:
    """The bytes from ``at`` to the separator ``stop`` (excluded) and the index after it."""
    end = data.find(bytes((stop,)), at)
    if end < 0:
        raise _NeedMore
    return data[at:end], end + 1


def _read_address(data: bytes, at: int) -> tuple[str, int]:
    end = data.find(b" ", at)
    field = data[at:] if end < 0 else data[at:end]
    if not _ADDRESS_CHARS.issuperset(field):
        raise _Broken
    if end < 0:
        raise _NeedMore
    return field.decode("ascii"), end + 1


def _read_port(data: bytes, at: int, stop: int) -> tuple[int, int]:
    field, at = _read_field(data, at, stop)
    # ngx_atoi: one or more ASCII digits, nothing else
    if not field or not field.isdigit():
        raise _Broken
    digits = field.lstrip(b"0")
    if len(digits) > 5 or int(digits or b"0") > 65535:
        raise _Broken
    return int(digits or b"0"), at


def _parse_v1(data: bytes) -> ProxyHeader | None:
    """Scan ``data`` (at most V1_MAX_HEADER bytes) as ngx_proxy_protocol_read does."""
    if not data.startswith(b"PROXY "):
        if b"PROXY ".startswith(data):
            raise _NeedMore
        raise _Broken
    rest = data[6:13]
    if rest.startswith(b"UNKNOWN"):
        end = data.find(b"\r\n", 13)
        if end < 0:
            raise _NeedMore
        return ProxyHeader(end + 2, 1)
    if len(rest) < 7 and b"UNKNOWN".startswith(rest):
        raise _NeedMore
    family = data[6:11]
    if family not in (b"TCP4 ", b"TCP6 "):
        if len(family) < 5 and (b"TCP4 ".startswith(family) or b"TCP6 ".startswith(family)):
            raise _NeedMore
        raise _Broken
    source, at = _read_address(data, 11)
    destination, at = _read_address(data, at)
    source_port, at = _read_port(data, at, 0x20)
    destination_port, at = _read_port(data, at, 0x0D)
    if at == len(data):
        raise _NeedMore
    if data[at] != 0x0A:
        raise _Broken
    return ProxyHeader(at + 1, 1, ProxyAddress(source, source_port),
                       ProxyAddress(destination, destination_port))


def _v2_address(packed: bytes) -> str:
    return format_ip(ipaddress.ip_address(packed))


def _parse_v2(data: bytes) -> ProxyHeader | ProxyHeaderError | None:
    version = data[12] >> 4
    if version != 2:
        return ProxyHeaderError("unknown PROXY protocol version: %d" % version)
    end = _V2_FIXED + ((data[14] << 8) | data[15])
    if end > PEEK_MAX:
        return ProxyHeaderError("header is too large")
    if len(data) < end:
        return None
    command = data[12] & 0x0F
    transport = data[13] & 0x0F
    family = data[13] >> 4
    if command != 1 or transport != 1 or family not in (1, 2):
        return ProxyHeader(end, 2)
    size = 4 if family == 1 else 16
    body = data[_V2_FIXED:end]
    if len(body) < 2 * size + 4:
        return ProxyHeaderError(None)
    source_port, destination_port = struct.unpack_from("!HH", body, 2 * size)
    return ProxyHeader(
        end, 2,
        ProxyAddress(_v2_address(body[:size]), source_port),
        ProxyAddress(_v2_address(body[size:2 * size]), destination_port),
        bytes(body[2 * size + 4:]))


def parse(data: bytes) -> ProxyHeader | ProxyHeaderError | None:
    """Read one inbound PROXY header from the start of ``data``.

    Returns None while more bytes may complete the header, else the header or the
    error.  Once a result is returned, more data never changes it (except the quoted
    bytes of a ``broken header`` message, which stop at the first CR/LF).

    >>> parse(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 30114\\r\\nA1 CAPABILITY")
    ProxyHeader(length=44, version=1, source=ProxyAddress(address='192.0.2.7', port=40000), \
destination=ProxyAddress(address='127.0.0.1', port=30114), tlvs=b'')
    """
    data = bytes(data[:PEEK_MAX])  # no header, nor the text of a broken one, goes further
    if data[:12] == SIGNATURE[:len(data[:12])]:
        if len(data) < _V2_FIXED:
            return None
        return _parse_v2(data)
    window = data[:V1_MAX_HEADER]
    try:
        return _parse_v1(window)
    except _NeedMore:
        if len(window) < V1_MAX_HEADER:
            return None
        return _broken(data)
    except _Broken:
        return _broken(data)


def parse_first_read(data: bytes) -> ProxyHeader | ProxyHeaderError:
    """nginx's reading of the header: it peeks once, when the first bytes arrive, and a
    header not complete in them is refused (``broken header`` for v1, ``header is too
    large`` for v2) rather than awaited."""
    result = parse(data)
    if result is not None:
        return result
    if len(data) >= _V2_FIXED and data[:12] == SIGNATURE:
        return ProxyHeaderError("header is too large")
    return _broken(bytes(data[:PEEK_MAX]))


# -- outbound ------------------------------------------------------------------------------


def _v1_text(end: SockAddr, address) -> tuple[str, int]:
    """ngx_sock_ntop without the port: the IP as nginx prints it, or unix:PATH and 0."""
    if address is None:
        return sockaddr_text(end), 0
    return format_ip(address), end[1]


def build_v1(client: SockAddr, local: SockAddr) -> bytes:
    """The v1 header nginx sends: the family is the client's; AF_UNIX gives UNKNOWN.

    >>> build_v1(("192.0.2.7", 40000), ("127.0.0.1", 30114))
    b'PROXY TCP4 192.0.2.7 127.0.0.1 40000 30114\\r\\n'
    """
    client_ip = sockaddr_ip(client)
    if client_ip is None:
        return b"PROXY UNKNOWN\r\n"
    client_text, client_port = _v1_text(client, client_ip)
    local_text, local_port = _v1_text(local, sockaddr_ip(local))
    return ("PROXY TCP%d %s %s %d %d\r\n" % (
        client_ip.version, client_text, local_text, client_port, local_port)).encode("ascii")


@dataclass(frozen=True, slots=True)
class TLSFacts:
    """The client connection's TLS facts that the v2 header carries (plain values).

    ``sni`` is the server name the client sent, ``alpn`` the negotiated protocol,
    ``version`` and ``cipher`` OpenSSL's names (``TLSv1.3``, ``TLS_AES_256_GCM_SHA384``),
    ``cn`` the client certificate's common name, ``has_cert`` whether the client
    presented a certificate, ``verify_result`` the X509 verify result, ``resumed``
    whether the session was resumed, ``sig_alg``/``key_alg`` nginx's own server
    certificate's signature and key algorithms (e.g. ``RSA2048``).
    """

    sni: str | bytes | None = None
    alpn: bytes | None = None
    version: str | None = None
    cipher: str | None = None
    cn: str | bytes | None = None
    has_cert: bool = False
    verify_result: int = 0
    resumed: bool = False
    sig_alg: str | None = None
    key_alg: str | None = None


def tls_facts(tls) -> TLSFacts:
    """The v2 header's facts of a client connection's ``TLSStream`` (after its handshake)."""
    sig_alg, key_alg = tls.server_certificate_algorithms()
    cn = tls.peer_common_name()
    return TLSFacts(
        sni=tls.server_name, alpn=(tls.alpn_protocol or "").encode() or None,
        version=tls.protocol, cipher=tls.cipher, cn=cn, has_cert=cn is not None,
        verify_result=tls.verify_result, resumed=tls.session_reused,
        sig_alg=sig_alg, key_alg=key_alg)


def _value(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    return value if len(value) <= MAX_TLV_VALUE else b""


def _tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


def _tls_tlvs(tls: TLSFacts) -> bytes:
    out = []
    for kind, value in ((PP2_TYPE_ALPN, tls.alpn), (PP2_TYPE_AUTHORITY, tls.sni)):
        value = _value(value)
        if value:
            out.append(_tlv(kind, value))
    client = PP2_CLIENT_SSL
    if tls.has_cert:
        client |= PP2_CLIENT_CERT_SESS
        if not tls.resumed:
            client |= PP2_CLIENT_CERT_CONN
    verify = (tls.verify_result & 0xFFFFFFFF) if tls.has_cert else 1
    ssl = [struct.pack("!BI", client, verify)]
    for kind, value in ((PP2_SUBTYPE_SSL_VERSION, tls.version), (PP2_SUBTYPE_SSL_CN, tls.cn),
                        (PP2_SUBTYPE_SSL_CIPHER, tls.cipher),
                        (PP2_SUBTYPE_SSL_SIG_ALG, tls.sig_alg),
                        (PP2_SUBTYPE_SSL_KEY_ALG, tls.key_alg)):
        value = _value(value)
        if value:
            ssl.append(_tlv(kind, value))
    out.append(_tlv(PP2_TYPE_SSL, b"".join(ssl)))
    return b"".join(out)


def _v2_addresses(client: SockAddr, local: SockAddr) -> tuple[int, int, bytes]:
    """(version/command byte, family/transport byte, address block) as
    ngx_proxy_protocol_v2_write_header() makes them."""
    source = sockaddr_ip(client)
    destination = sockaddr_ip(local)
    if source is None or destination is None:
        return 0x20, 0x00, b""  # LOCAL, UNSPEC
    ports = struct.pack("!HH", client[1], local[1])
    if source.version == 4 and destination.version == 4:
        return 0x21, 0x11, source.packed + destination.packed + ports
    if (source.version == 6 and destination.version == 6
            and source.ipv4_mapped is not None and destination.ipv4_mapped is not None):
        return 0x21, 0x11, source.ipv4_mapped.packed + destination.ipv4_mapped.packed + ports

    def promoted(address) -> bytes:
        return _V4_MAPPED + address.packed if address.version == 4 else address.packed

    return 0x21, 0x21, promoted(source) + promoted(destination) + ports


def build_v2(client: SockAddr, local: SockAddr, tls: TLSFacts | None = None) -> bytes:
    """The v2 header nginx sends: addresses, TLS TLVs when ``tls`` is given, CRC32C last."""
    command, family, body = _v2_addresses(client, local)
    if tls is not None:
        body += _tls_tlvs(tls)
    body += _tlv(PP2_TYPE_CRC32C, b"\0\0\0\0")
    header = bytearray(SIGNATURE + struct.pack("!BBH", command, family, len(body)) + body)
    header[-4:] = struct.pack("!I", crc32c(header))
    return bytes(header)


def backend_header(mode: str, client: SockAddr, local: SockAddr, tls=None) -> bytes:
    """What a session sends its backend first for ``proxy_protocol mode``: nothing when
    ``off``; ``tls`` is the client connection's ``TLSStream`` (its facts go in v2)."""
    if mode == "off":
        return b""
    facts = tls_facts(tls) if mode == "v2" and tls is not None else None
    return outbound_header(mode, client, local, facts)


def outbound_header(mode: str, client: SockAddr, local: SockAddr,
                    tls: TLSFacts | None = None) -> bytes:
    """The header for the ``proxy_protocol`` value ``mode`` (``on`` = v1, ``v2``).

    ``client`` is the (realip-substituted) client, ``local`` the accepting socket's
    address; ``tls`` the client connection's TLS facts (v2 only), None without TLS.
    """
    if mode == "v2":
        return build_v2(client, local, tls)
    if mode == "on":
        return build_v1(client, local)
    raise ValueError("proxy_protocol is %r" % (mode,))


# -- CRC32C (Castagnoli), table-driven ------------------------------------------------------


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (iSCSI, RFC 3720) of ``data``; pass a previous result as ``crc`` to continue."""
    table = _CRC32C_TABLE
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
