"""nginx's address text rules and the realip decision."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.config import Config
from mailgate.proxy.proxy_protocol import ProxyAddress, ProxyHeader, parse
from mailgate.proxy.realip import RealIP, format_ip, parse_ip, peer_ip, realip_for


@pytest.mark.parametrize("text, printed", [
    ("::ffff:192.0.2.7", "::ffff:192.0.2.7"),  # v4-mapped: dotted tail
    ("::192.0.2.7", "::192.0.2.7"),  # v4-compatible: dotted tail
    ("::102", "::0.0.1.2"),  # seven zero groups and not ::1-like: dotted (nginx quirk)
    ("::101", "::101"),
    ("::1", "::1"),
    ("::", "::"),
    ("1::", "1::"),
    ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),  # the longest run
    ("1:0:0:2:3:0:0:4", "1::2:3:0:0:4"),  # the first of equal runs
    ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),  # a single zero group stays
    ("2001:DB8::A", "2001:db8::a"),
    ("0192.0.2.7", "192.0.2.7"),  # ngx_inet_addr: leading zeros are decimal
    ("1..2.3", "1.0.2.3"),  # empty octets are zero
    (".1.2.3", "0.1.2.3"),
    (":1::", "1::"),  # one leading ':' is skipped
    ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
    ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
])
def test_nginx_address_text(text, printed):
    assert format_ip(parse_ip(text)) == printed


@pytest.mark.parametrize("text", [
    "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", "255.255.255.255",  # INADDR_NONE
    "::ffff:255.255.255.255", "1::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
    "12345::", "g::", "1:::2", "1::2::3", "::1.2.3", "1.2.3.4::", "::ab.1.2.3",
    "1:2:3:4:5:6:7:1.2.3.4", "[::1]", "fe80::1%eth0", "é", b"\xff",
])
def test_nginx_refuses(text):
    assert parse_ip(text) is None


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_printer_and_parser_agree_with_each_other_and_with_ipaddress(address):
    text = format_ip(address)
    packed = address.packed
    dotted = address.version == 6 and packed[:10] == bytes(10) and (
        packed[10:12] == b"\xff\xff" or packed[10:12] == b"\0\0" and (
            packed[12:14] != b"\0\0" or packed[14] != 0 and packed[15] != 1))
    if not dotted:
        assert text == address.compressed
    if (address.version == 4 or dotted) and packed[-4:] == b"\xff" * 4:
        assert parse_ip(text) is None  # INADDR_NONE, even as a dotted tail, as in nginx
    else:
        assert parse_ip(text) == address
    assert parse_ip(address.exploded) == (None if address.version == 4 and packed == b"\xff" * 4
                                          else address)


def test_peer_ip():
    assert peer_ip("fe80::1%eth0") == ipaddress.IPv6Address("fe80::1")
    assert peer_ip("127.0.0.1") == ipaddress.IPv4Address("127.0.0.1")
    assert peer_ip("/run/sock") is None


HEADER = ProxyHeader(44, 1, ProxyAddress("192.0.2.7", 40000), ProxyAddress("127.0.0.1", 30114))


def test_trusted_peer_gets_the_header_source():
    realip = RealIP(["127.0.0.1/32"])
    assert realip.client(HEADER, "127.0.0.1") == ("192.0.2.7", 40000)
    assert realip.client(HEADER, "127.0.0.2") is None
    assert realip.client(None, "127.0.0.1") is None  # realip only after a header
    assert realip.client(ProxyHeader(15, 1), "127.0.0.1") is None  # PROXY UNKNOWN
    assert realip.client(HEADER, None) is None  # a unix peer without "unix:"


def test_header_source_is_reparsed_and_printed_as_nginx_does():
    realip = RealIP(["0.0.0.0/0"])
    header = parse(b"PROXY TCP4 0192.0.2.7 127.0.0.1 0 1\r\n")
    assert realip.client(header, "10.1.1.1") == ("192.0.2.7", 0)
    header = parse(b"PROXY TCP6 2001:DB8:0:0::7 ::1 1 2\r\n")
    assert realip.client(header, "10.1.1.1") == ("2001:db8::7", 1)
    for bad in (b"1.2.3", b"255.255.255.255", b"", b"1::2::3"):
        header = parse(b"PROXY TCP4 " + bad + b" 127.0.0.1 1 2\r\n")
        assert header.source is not None
        assert realip.client(header, "10.1.1.1") is None


def test_cidr_matching_like_ngx_cidr_match():
    realip = RealIP(["10.0.0.0/8", "2001:db8::/32", "::ffff:0:0/96"])
    assert realip.trusts("10.200.1.1")
    assert not realip.trusts("11.0.0.1")
    assert realip.trusts("2001:db8:1::1")
    assert realip.trusts("2001:db8:1::1%eth0")
    assert not realip.trusts("2001:db9::1")
    # an IPv4-mapped peer is matched as IPv4, against IPv4 entries only
    assert realip.trusts("::ffff:10.1.2.3")
    assert not realip.trusts("::ffff:11.1.2.3")
    assert not RealIP(["::ffff:0:0/96"]).trusts("::ffff:11.1.2.3")
    assert not realip.trusts("not an address")
    assert not realip.trusts(None)


def test_unix_entry_trusts_unix_peers_only():
    realip = RealIP(["unix:"])
    assert realip.trusts(None)
    assert realip.client(HEADER, None) == ("192.0.2.7", 40000)
    assert not realip.trusts("127.0.0.1")


def test_empty_list_never_substitutes():
    realip = RealIP([])
    assert not realip
    assert not realip.trusts(None) and realip.client(HEADER, "127.0.0.1") is None


def test_from_configuration():
    config = Config.from_string("""
        mail {
            auth_http 127.0.0.1:9000;
            set_real_ip_from 127.0.0.1;
            set_real_ip_from 10.0.0.1/8;
            set_real_ip_from unix:;
            server { listen 127.0.0.1:30114 proxy_protocol; protocol pop3; }
        }
    """)
    entries = config.servers[0].set_real_ip_from
    realip = realip_for(entries)
    assert realip is realip_for(entries)
    assert realip.trusts("127.0.0.1") and realip.trusts("10.9.9.9") and realip.trusts(None)
    assert not realip.trusts("127.0.0.2")
