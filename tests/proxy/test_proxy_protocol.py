"""PROXY protocol: inbound parsing (nginx's rules), outbound builders, CRC32C."""

from __future__ import annotations

import ipaddress
import struct

import crc32c as crc32c_reference
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proxyprotocol import ProxyProtocolChecksumError
from proxyprotocol.v1 import ProxyProtocolV1
from proxyprotocol.v2 import ProxyProtocolV2

from mailgate.auth.facts import ProxyAddresses
from mailgate.inet import format_ip
from mailgate.proxy.proxy_protocol import (
    PEEK_MAX, SIGNATURE, V1_MAX_HEADER, ProxyAddress, ProxyHeader, ProxyHeaderError, TLSFacts,
    build_v1, build_v2, crc32c, outbound_header, parse)

LIVE_V1 = b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 30114\r\n"


def v2(command: int, family: int, body: bytes, length: int | None = None) -> bytes:
    return SIGNATURE + struct.pack("!BBH", command, family,
                                   len(body) if length is None else length) + body


def broken(text: str) -> ProxyHeaderError:
    return ProxyHeaderError('broken header: "%s"' % text)


# -- v1 inbound ------------------------------------------------------------------------------


def test_live_transcript_header_is_read_and_only_its_bytes_consumed():
    header = parse(LIVE_V1 + b"A1 CAPABILITY\r\n")
    assert header == ProxyHeader(len(LIVE_V1), 1, ProxyAddress("192.0.2.7", 40000),
                                 ProxyAddress("127.0.0.1", 30114))
    assert header.addresses == ProxyAddresses("192.0.2.7", 40000, "127.0.0.1", 30114)
    assert header.tlv(1) is None
    assert parse(bytearray(LIVE_V1 + bytes(100000))) == header


@pytest.mark.parametrize("line, source, destination", [
    (b"PROXY TCP6 2001:db8::7 ::1 1 2\r\n", ("2001:db8::7", 1), ("::1", 2)),
    (b"PROXY TCP4 10.0.0.1 10.0.0.2 0 65535\r\n", ("10.0.0.1", 0), ("10.0.0.2", 65535)),
    # nginx keeps the text: leading zeros, upper case, a TCP4 line with IPv6 text
    (b"PROXY TCP4 0192.0.2.7 FE80::A 00080 0000000000000000000443\r\n",
     ("0192.0.2.7", 80), ("FE80::A", 443)),
    (b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", ("1.2.3.4", 1), ("5.6.7.8", 2)),
    # an empty address field passes the character check
    (b"PROXY TCP4  1.2.3.4 7 8\r\n", ("", 7), ("1.2.3.4", 8)),
])
def test_v1_tcp_headers(line, source, destination):
    assert parse(line + b"rest") == ProxyHeader(len(line), 1, ProxyAddress(*source),
                                                ProxyAddress(*destination))


@pytest.mark.parametrize("line", [
    b"PROXY UNKNOWN\r\n",
    b"PROXY UNKNOWN ffff::1 ::1 4 5\r\n",
    b"PROXY UNKNOWNjunk \x00\xff\r\n",
])
def test_v1_unknown_is_skipped_without_addresses(line):
    header = parse(line + b"* OK")
    assert header == ProxyHeader(len(line), 1)
    assert header.addresses is None


@pytest.mark.parametrize("data, text", [
    (b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", "GET / HTTP/1.0"),
    (b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "proxy TCP4 1.2.3.4 1.2.3.4 1 2"),
    (b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "PROXY TCP5 1.2.3.4 1.2.3.4 1 2"),
    (b"PROXY TCP4\r\n", "PROXY TCP4"),
    (b"PROXY \r\n", "PROXY "),
    (b"PROXY UNKNOW\r\n", "PROXY UNKNOW"),
    (b"PROXY TCP4 1.2.3.x 1.2.3.4 1 2\r\n", "PROXY TCP4 1.2.3.x 1.2.3.4 1 2"),
    (b"PROXY TCP4 1.2.3.4 1.2.3.4\r\n 1 2\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4"),
    (b"PROXY TCP6 [::1] ::1 1 2\r\n", "PROXY TCP6 [::1] ::1 1 2"),
    (b"PROXY TCP4 1.1.1.1 2.2.2.2 65536 2\r\n", "PROXY TCP4 1.1.1.1 2.2.2.2 65536 2"),
    (b"PROXY TCP4 1.1.1.1 2.2.2.2 1 99999999999999999999\r\n",
     "PROXY TCP4 1.1.1.1 2.2.2.2 1 99999999999999999999"),
    (b"PROXY TCP4 1.1.1.1 2.2.2.2 -1 2\r\n", "PROXY TCP4 1.1.1.1 2.2.2.2 -1 2"),
    (b"PROXY TCP4 1.1.1.1 2.2.2.2 +1 2\r\n", "PROXY TCP4 1.1.1.1 2.2.2.2 +1 2"),
    (b"PROXY TCP4 1.1.1.1 2.2.2.2 1a 2\r\n", "PROXY TCP4 1.1.1.1 2.2.2.2 1a 2"),
    (b"PROXY TCP4 1.1.1.1 2.2.2.2  2\r\n", "PROXY TCP4 1.1.1.1 2.2.2.2  2"),
    (b"PROXY TCP4 1.1.1.1 2.2.2.2 1 \r\n", "PROXY TCP4 1.1.1.1 2.2.2.2 1 "),
    (b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2 \r\n", "PROXY TCP4 1.1.1.1 2.2.2.2 1 2 "),
    (b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2\rX\n", "PROXY TCP4 1.1.1.1 2.2.2.2 1 2"),
    # a bare LF ends nothing: the destination port runs to the next CR
    (b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2\nA1 NOOP\r\n", "PROXY TCP4 1.1.1.1 2.2.2.2 1 2"),
    # the quoted text stops at the first CR or LF, whichever comes first
    (b"\r\nPROXY", ""),
    (b"x\n\r", "x"),
    # control bytes escaped (nginx writes them raw; a client must not forge log lines)
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
     r"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
])
def test_v1_broken_headers_log_nginx_text(data, text):
    assert parse(data) == broken(text)


def test_v1_header_ends_within_107_bytes():
    exact = b"PROXY UNKNOWN" + b"x" * (V1_MAX_HEADER - 15) + b"\r\n"
    assert len(exact) == V1_MAX_HEADER
    assert parse(exact + b"more") == ProxyHeader(V1_MAX_HEADER, 1)
    longer = b"PROXY UNKNOWN" + b"x" * (V1_MAX_HEADER - 14) + b"\r\n"
    assert parse(longer) == broken(longer[:-2].decode())
    # an endless address is cut at 107 bytes and reported whole (up to 4096 bytes)
    endless = b"PROXY TCP6 " + b"f" * 5000
    assert parse(endless) == broken(endless[:PEEK_MAX].decode())
    assert parse(endless[:V1_MAX_HEADER - 1]) is None


@pytest.mark.parametrize("header", [
    LIVE_V1,
    b"PROXY UNKNOWN\r\n",
    b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n",
])
def test_v1_every_strict_prefix_needs_more(header):
    for n in range(len(header)):
        assert parse(header[:n]) is None, header[:n]
    assert isinstance(parse(header), ProxyHeader)


def test_bad_bytes_are_rejected_at_once():
    assert parse(b"G") == broken("G")
    assert parse(b"PROXY X") == broken("PROXY X")
    assert parse(b"PROXY TCP4 1.2.3.4 g") == broken("PROXY TCP4 1.2.3.4 g")
    assert parse(b"PROXY TCP4 1.1.1.1 2.2.2.2 1x ") == broken("PROXY TCP4 1.1.1.1 2.2.2.2 1x ")


# -- v2 inbound ------------------------------------------------------------------------------


def test_v2_inet_by_hand():
    body = (bytes([192, 0, 2, 7, 127, 0, 0, 1]) + struct.pack("!HH", 40000, 30114)
            + b"\x01\x00\x04imap")
    data = v2(0x21, 0x11, body)
    header = parse(data + b"A1 LOGIN")
    assert header == ProxyHeader(len(data), 2, ProxyAddress("192.0.2.7", 40000),
                                 ProxyAddress("127.0.0.1", 30114), b"\x01\x00\x04imap")
    assert header.tlv(0x01) == b"imap"
    assert header.tlv(0x02) is None


def test_v2_inet6_addresses_are_printed_as_nginx_prints_them():
    source = ipaddress.IPv6Address("::ffff:192.0.2.7").packed
    destination = ipaddress.IPv6Address("2001:db8:0:0:1::1").packed
    data = v2(0x21, 0x21, source + destination + struct.pack("!HH", 1, 2))
    assert parse(data) == ProxyHeader(len(data), 2, ProxyAddress("::ffff:192.0.2.7", 1),
                                      ProxyAddress("2001:db8::1:0:0:1", 2))


@pytest.mark.parametrize("command, family", [
    (0x20, 0x11),  # LOCAL
    (0x22, 0x11),  # an unknown command
    (0x21, 0x00),  # UNSPEC
    (0x21, 0x12),  # DGRAM
    (0x21, 0x10),  # transport UNSPEC
    (0x21, 0x31),  # AF_UNIX is not interpreted
    (0x21, 0x41),  # an unknown family
])
def test_v2_other_commands_families_transports_are_skipped_whole(command, family):
    data = v2(command, family, bytes(216) + b"\x04\x00\x02hi")
    assert parse(data + b"x") == ProxyHeader(len(data), 2)


def test_v2_errors():
    assert parse(v2(0x11, 0x11, bytes(12))) == ProxyHeaderError(
        "unknown PROXY protocol version: 1")
    assert parse(v2(0xF1, 0x11, b"")) == ProxyHeaderError("unknown PROXY protocol version: 15")
    assert parse(SIGNATURE + b"\x21\x11\x0f\xf1") == ProxyHeaderError("header is too large")
    # INET/INET6 with too few address bytes: nginx closes without a log line
    assert parse(v2(0x21, 0x11, bytes(11))) == ProxyHeaderError(None)
    assert parse(v2(0x21, 0x21, bytes(35))) == ProxyHeaderError(None)


def test_v2_largest_header_that_fits_the_peek():
    body = bytes(12) + b"\xee" + struct.pack("!H", PEEK_MAX - 16 - 12 - 3) + bytes(
        PEEK_MAX - 16 - 12 - 3)
    data = v2(0x21, 0x11, body)
    assert len(data) == PEEK_MAX
    for n in (0, 1, 11, 12, 15, 16, 100, PEEK_MAX - 1):
        assert parse(data[:n]) is None
    header = parse(data + b"tail")
    assert header.length == PEEK_MAX and header.tlv(0xEE) == bytes(PEEK_MAX - 31)


def test_broken_tlvs_are_not_found():
    header = ProxyHeader(16, 2, tlvs=b"\x01\x00\x05abc")
    assert header.tlv(1) is None
    assert ProxyHeader(16, 2, tlvs=b"\x01\x00").tlv(1) is None
    assert ProxyHeader(16, 2, tlvs=b"\x05\x00\x00\x01\x00\x01z").tlv(1) == b"z"


# -- never raises; decisive once decided ---------------------------------------------------

prefixes = st.sampled_from([b"", b"PROXY ", b"PROXY TCP4 ", b"PROXY TCP6 ", b"PROXY UNKNOWN",
                            SIGNATURE, SIGNATURE + b"\x21\x11", SIGNATURE + b"\x21\x21\x00\x24",
                            LIVE_V1[:30]])


@settings(max_examples=600, deadline=None)
@given(prefixes, st.binary(max_size=300), st.binary(max_size=40))
def test_parse_never_raises_and_a_result_does_not_change(prefix, data, more):
    data = prefix + data
    result = parse(data)
    assert result is None or isinstance(result, (ProxyHeader, ProxyHeaderError))
    later = parse(data + more)
    if isinstance(result, ProxyHeader):
        assert later == result
        assert result.length <= len(data)
    elif isinstance(result, ProxyHeaderError):
        assert isinstance(later, ProxyHeaderError)


# -- outbound --------------------------------------------------------------------------------


def test_live_transcripts_of_the_backend_header():
    assert build_v1(("192.0.2.7", 40000), ("127.0.0.1", 30114)) == LIVE_V1
    assert (outbound_header("on", ("127.0.0.1", 34938), ("127.0.0.1", 30115))
            == b"PROXY TCP4 127.0.0.1 127.0.0.1 34938 30115\r\n")


def test_v1_builder_families():
    assert build_v1("/run/mail.sock", ("127.0.0.1", 1)) == b"PROXY UNKNOWN\r\n"
    assert build_v1("", "") == b"PROXY UNKNOWN\r\n"
    assert (build_v1(("::ffff:192.0.2.7", 5), ("::ffff:127.0.0.1", 143))
            == b"PROXY TCP6 ::ffff:192.0.2.7 ::ffff:127.0.0.1 5 143\r\n")
    # the family is the client's; a realip IPv4 client on an IPv6 or unix listener
    assert build_v1(("192.0.2.7", 5), ("::1", 143)) == b"PROXY TCP4 192.0.2.7 ::1 5 143\r\n"
    assert (build_v1(("192.0.2.7", 5), "/run/m.sock")
            == b"PROXY TCP4 192.0.2.7 unix:/run/m.sock 5 0\r\n")
    assert build_v1(("fe80::1%eth0", 5), ("fe80::2", 6)) == b"PROXY TCP6 fe80::1 fe80::2 5 6\r\n"
    with pytest.raises(ValueError):
        build_v1(("not-an-ip", 1), ("127.0.0.1", 2))
    with pytest.raises(ValueError):
        outbound_header("off", ("127.0.0.1", 1), ("127.0.0.1", 2))


def crc_tlv(header: bytes) -> bytes:
    """The CRC32C TLV nginx appends, computed with the reference implementation."""
    zeroed = header[:-4] + b"\0\0\0\0"
    return struct.pack("!I", crc32c_reference.crc32c(zeroed))


def test_v2_inet_vector_by_hand():
    header = build_v2(("192.0.2.7", 40000), ("127.0.0.1", 30114))
    expected = (SIGNATURE + b"\x21\x11\x00\x13" + bytes([192, 0, 2, 7, 127, 0, 0, 1])
                + b"\x9c\x40\x75\xa2" + b"\x03\x00\x04")
    assert header[:-4] == expected
    assert header[-4:] == crc_tlv(header)
    result = ProxyProtocolV2().unpack(header)  # verifies the checksum too
    assert result.source == (ipaddress.IPv4Address("192.0.2.7"), 40000)
    assert result.dest == (ipaddress.IPv4Address("127.0.0.1"), 30114)
    assert result.tlv.crc32c == struct.unpack("!I", header[-4:])[0]


def test_v2_family_promotion_and_demotion():
    mixed = build_v2(("192.0.2.7", 1), ("2001:db8::1", 2))
    assert mixed[12:16] == b"\x21\x21\x00\x2b"
    assert mixed[16:32] == ipaddress.IPv6Address("::ffff:192.0.2.7").packed
    assert mixed[32:48] == ipaddress.IPv6Address("2001:db8::1").packed
    mixed_back = build_v2(("2001:db8::1", 1), ("127.0.0.1", 2))
    assert mixed_back[32:48] == ipaddress.IPv6Address("::ffff:127.0.0.1").packed
    mapped = build_v2(("::ffff:192.0.2.7", 1), ("::ffff:127.0.0.1", 2))
    assert mapped[12:28] == b"\x21\x11\x00\x13" + bytes([192, 0, 2, 7, 127, 0, 0, 1]) + (
        b"\x00\x01\x00\x02")
    # one side plain IPv4, the other v4-mapped: promoted, not demoted
    assert build_v2(("192.0.2.7", 1), ("::ffff:127.0.0.1", 2))[13] == 0x21
    v6 = build_v2(("2001:db8::1", 1), ("::1", 2))
    assert v6[12:16] == b"\x21\x21\x00\x2b"
    for header in (mixed, mixed_back, mapped, v6):
        assert header[-4:] == crc_tlv(header)
        ProxyProtocolV2().unpack(header)


def test_v2_non_ip_side_gives_local_unspec():
    for client, local in (("/run/c", ("127.0.0.1", 1)), (("127.0.0.1", 1), b"\0abstract"),
                          ("", "")):
        header = build_v2(client, local)
        assert header[12:16] == b"\x20\x00\x00\x07"
        assert header[16:19] == b"\x03\x00\x04" and header[-4:] == crc_tlv(header)
        assert parse(header) == ProxyHeader(len(header), 2)
        assert ProxyProtocolV2().unpack(header).proxied is False


def test_v2_tls_tlvs_by_hand():
    tls = TLSFacts(sni=b"mail.example", alpn=b"imap", version="TLSv1.3",
                   cipher="TLS_AES_256_GCM_SHA384", cn="client one", has_cert=True,
                   verify_result=0, resumed=False, sig_alg="RSA-SHA256", key_alg="RSA2048")
    header = build_v2(("192.0.2.7", 40000), ("127.0.0.1", 993), tls)
    tlvs = parse(header).tlvs
    ssl = (b"\x07" + b"\0\0\0\0"
           + b"\x21\x00\x07TLSv1.3" + b"\x22\x00\x0aclient one"
           + b"\x23\x00\x16TLS_AES_256_GCM_SHA384" + b"\x24\x00\x0aRSA-SHA256"
           + b"\x25\x00\x07RSA2048")
    assert tlvs == (b"\x01\x00\x04imap" + b"\x02\x00\x0cmail.example"
                    + b"\x20" + struct.pack("!H", len(ssl)) + ssl + b"\x03\x00\x04" + header[-4:])
    assert header[-4:] == crc_tlv(header)
    assert struct.unpack("!H", header[14:16])[0] == len(header) - 16


@pytest.mark.parametrize("facts, client, verify", [
    (TLSFacts(), 0x01, 1),  # no certificate: verify is 1
    (TLSFacts(has_cert=True, verify_result=18), 0x07, 18),
    (TLSFacts(has_cert=True, resumed=True), 0x05, 0),
    (TLSFacts(has_cert=True, verify_result=-1), 0x07, 0xFFFFFFFF),
])
def test_v2_ssl_client_flags_and_verify(facts, client, verify):
    header = build_v2(("127.0.0.1", 1), ("127.0.0.1", 2), facts)
    ssl = parse(header).tlv(0x20)
    assert ssl == struct.pack("!BI", client, verify)


def test_v2_tls_values_left_out_when_absent_or_too_long():
    header = build_v2(("127.0.0.1", 1), ("127.0.0.1", 2),
                      TLSFacts(sni="", alpn=None, cn="x" * 5000, version="TLSv1.2"))
    parsed = parse(header)
    assert parsed.tlv(0x01) is None and parsed.tlv(0x02) is None
    assert parsed.tlv(0x20) == b"\x01\0\0\0\x01" + b"\x21\x00\x07TLSv1.2"


addresses = st.one_of(
    st.ip_addresses(v=4),
    st.ip_addresses(v=6),
    st.ip_addresses(v=4).map(lambda a: ipaddress.IPv6Address("::ffff:%s" % a)))
ports = st.integers(0, 65535)
texts = st.one_of(st.none(), st.text(max_size=40), st.binary(max_size=40))
names = st.one_of(st.none(), st.text(st.characters(max_codepoint=126), max_size=40))


@settings(max_examples=300, deadline=None)
@given(addresses, ports, addresses, ports)
def test_v1_round_trip(client, client_port, local, local_port):
    header = build_v1((str(client), client_port), (str(local), local_port))
    parsed = parse(header + b"tail")
    assert parsed == ProxyHeader(len(header), 1, ProxyAddress(format_ip(client), client_port),
                                 ProxyAddress(format_ip(local), local_port))
    assert len(header) <= V1_MAX_HEADER
    # an independent parser reads the same addresses (it knows neither mixed families
    # nor nginx's dotted tails)
    if client.version != local.version or "." in header.decode()[11:] and client.version == 6:
        return
    result = ProxyProtocolV1().unpack(header)
    assert (result.source[0], result.source[1]) == (client, client_port)
    assert (result.dest[0], result.dest[1]) == (local, local_port)


def _as_v6(address):
    return ipaddress.IPv6Address("::ffff:%s" % address) if address.version == 4 else address


def _expected_pair(client, local):
    if client.version == local.version == 4:
        return client, local
    if (client.version == local.version == 6 and client.ipv4_mapped is not None
            and local.ipv4_mapped is not None):
        return client.ipv4_mapped, local.ipv4_mapped
    return _as_v6(client), _as_v6(local)


@settings(max_examples=300, deadline=None)
@given(addresses, ports, addresses, ports,
       st.one_of(st.none(), st.builds(TLSFacts, sni=texts, alpn=st.one_of(
           st.none(), st.binary(max_size=20)), version=names, cipher=names, cn=texts,
           has_cert=st.booleans(), verify_result=st.integers(0, 80), resumed=st.booleans(),
           sig_alg=names, key_alg=names)))
def test_v2_round_trip(client, client_port, local, local_port, tls):
    header = build_v2((str(client), client_port), (str(local), local_port), tls)
    parsed = parse(header + b"tail")
    source, destination = _expected_pair(client, local)
    assert parsed.length == len(header)
    assert parsed.source == ProxyAddress(format_ip(source), client_port)
    assert parsed.destination == ProxyAddress(format_ip(destination), local_port)
    assert header[-4:] == crc_tlv(header)
    assert crc32c(header[:-4] + bytes(4)) == struct.unpack("!I", header[-4:])[0]
    # the independent parser sees the same addresses and TLVs; it recomputes the
    # checksum over TLVs re-sorted by type, so it only agrees when they are in order
    try:
        result = ProxyProtocolV2().unpack(header)
    except ProxyProtocolChecksumError as exc:
        assert tls is not None
        result = exc.result
    assert result.source == (source, client_port) and result.dest == (destination, local_port)
    if tls is None:
        assert parsed.tlv(0x20) is None
        return
    ssl = result.tlv.ssl
    assert ssl.has_ssl
    assert ssl.has_cert_sess == tls.has_cert
    assert ssl.has_cert_conn == (tls.has_cert and not tls.resumed)
    assert ssl.verify == (tls.verify_result if tls.has_cert else 1)

    def value(v):
        return (v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v) or None

    assert parsed.tlv(0x01) == value(tls.alpn)
    assert parsed.tlv(0x02) == value(tls.sni)
    if value(tls.cn) is not None:
        assert ssl[0x22] == value(tls.cn)
    if value(tls.cipher) is not None:
        assert ssl.cipher == tls.cipher


def test_v2_parse_of_unexpected_families_in_builder_output():
    # a round trip through nginx's own parser keeps the header length exact
    header = build_v2(("::1", 143), ("::1", 1143), TLSFacts(sni="x"))
    assert parse(header[:-1]) is None
    assert parse(header).length == len(header)


# -- CRC32C ------------------------------------------------------------------------------


@pytest.mark.parametrize("data, crc", [
    (b"", 0),
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),  # RFC 3720 B.4
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
])
def test_crc32c_vectors(data, crc):
    assert crc32c(data) == crc


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.binary(max_size=100))
def test_crc32c_matches_reference_and_continues(a, b):
    assert crc32c(a) == crc32c_reference.crc32c(a)
    assert crc32c(b, crc32c(a)) == crc32c(a + b)
