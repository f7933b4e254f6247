"""mailgate.inet: nginx's address text rules (src/core/ngx_inet.c), socket addresses as
Python gives them, CIDR lists."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.inet import (
    CIDRList,
    format_ip,
    parse_ip,
    peer_ip,
    ptocidr,
    sock_ntop,
    sockaddr_family,
    sockaddr_ip,
    sockaddr_text,
)

# -- ngx_parse_addr / ngx_inet_ntop ------------------------------------------------------


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


# -- ngx_sock_ntop and socket addresses ----------------------------------------------------


def test_sock_ntop_of_each_family():
    assert sock_ntop(socket.AF_INET, "192.0.2.7", 25) == "192.0.2.7:25"
    assert sock_ntop(socket.AF_INET6, "::1", 25) == "[::1]:25"
    assert sock_ntop(socket.AF_UNIX, "/run/mail.sock", 0) == "unix:/run/mail.sock"


@pytest.mark.parametrize("addr, family, ip, text", [
    (("192.0.2.7", 40000), socket.AF_INET, "192.0.2.7", "192.0.2.7:40000"),
    (("::1", 143, 0, 0), socket.AF_INET6, "::1", "[::1]:143"),
    (("::ffff:192.0.2.7", 143, 0, 0), socket.AF_INET6, "::ffff:192.0.2.7",
     "[::ffff:192.0.2.7]:143"),
    # the scope stays in the text as the socket gave it; the address has none
    (("fe80::1%eth0", 143, 0, 2), socket.AF_INET6, "fe80::1", "[fe80::1%eth0]:143"),
    ("/run/mail.sock", socket.AF_UNIX, None, "unix:/run/mail.sock"),
    ("", socket.AF_UNIX, None, "unix:"),  # an unnamed peer
    (b"\0abstract", socket.AF_UNIX, None, "unix:"),  # the path stops at its first NUL
    (b"/run/m\xe9.sock", socket.AF_UNIX, None, "unix:/run/m\xe9.sock"),
])
def test_socket_addresses_as_python_gives_them(addr, family, ip, text):
    assert sockaddr_family(addr) == family
    assert sockaddr_ip(addr) == (None if ip is None else ipaddress.ip_address(ip))
    assert sockaddr_text(addr) == text


def test_sockaddr_ip_refuses_a_host_name():
    with pytest.raises(ValueError):
        sockaddr_ip(("localhost", 25))


# -- ngx_ptocidr / ngx_cidr_match ----------------------------------------------------------


@pytest.mark.parametrize("text, network, low_bits", [
    ("127.0.0.1", "127.0.0.1/32", False),
    ("10.0.0.0/8", "10.0.0.0/8", False),
    ("10.1.2.3/8", "10.0.0.0/8", True),
    ("2001:db8::/32", "2001:db8::/32", False),
    ("2001:db8::1/32", "2001:db8::/32", True),
    ("::1", "::1/128", False),
])
def test_ptocidr(text, network, low_bits):
    assert ptocidr(text) == (ipaddress.ip_network(network), low_bits)


@pytest.mark.parametrize("text", ["", "mail.example", "1.2.3.4/33", "unix:", "10.0.0.0/x"])
def test_ptocidr_refuses(text):
    assert ptocidr(text) is None


def test_cidr_matching_like_ngx_cidr_match():
    cidrs = CIDRList(["10.0.0.0/8", "2001:db8::/32", "::ffff:0:0/96"])
    assert cidrs.match("10.200.1.1")
    assert not cidrs.match("11.0.0.1")
    assert cidrs.match("2001:db8:1::1")
    assert cidrs.match("2001:db8:1::1%eth0")
    assert not cidrs.match("2001:db9::1")
    # an IPv4-mapped peer is matched as IPv4, against IPv4 entries only
    assert cidrs.match("::ffff:10.1.2.3")
    assert not cidrs.match("::ffff:11.1.2.3")
    assert not CIDRList(["::ffff:0:0/96"]).match("::ffff:11.1.2.3")
    assert not cidrs.match("not an address")
    assert not cidrs.match(None)


def test_cidr_list_unix_entry_and_emptiness():
    unix = CIDRList(["unix:"])
    assert unix and unix.match(None) and not unix.match("127.0.0.1")
    empty = CIDRList([])
    assert not empty and not empty.match(None) and not empty.match("127.0.0.1")
    with pytest.raises(ValueError):
        CIDRList(["mail.example"])
