"""The realip decision (the address rules it uses are tested in tests/test_inet.py)."""

from __future__ import annotations

from mailgate.config import Config
from mailgate.proxy.proxy_protocol import ProxyAddress, ProxyHeader, parse
from mailgate.proxy.realip import RealIP, realip_for

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
