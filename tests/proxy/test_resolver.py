"""The SMTP client name lookup against a real (scripted) DNS server on a loopback port."""

from __future__ import annotations

import asyncio
import socket
import time

import dns.flags
import pytest

from mailgate.config import Config
from mailgate.config.model import Resolver
from mailgate.inet import TEMPUNAVAIL, UNAVAILABLE
from mailgate.protocol.events import Log
from mailgate.proxy.resolver import (
    ACTION_ADDRESS, ACTION_NAME, ClientName, ClientNameResolver, strerror)
from tests.support.dns_server import (
    DNSServer, answer_with, garbage, other_question, reverse_name, wrong_id)

CLIENT = "127.0.0.1"
PTR = reverse_name(CLIENT)


def run(test, *, timeout=0.6, resend=5.0, servers=1, ipv4=True, ipv6=True, valid=None,
        cache_size=10000):
    """Run ``test(resolver, *dns_servers)`` with fresh servers, inside a bounded time."""

    async def main():
        dns_servers = [await DNSServer().start() for _ in range(servers)]
        try:
            config = Resolver(tuple(s.address for s in dns_servers), valid, ipv4, ipv6)
            resolver = ClientNameResolver(config, timeout, resend_interval=resend,
                                          cache_size=cache_size)
            return await test(resolver, *dns_servers)
        finally:
            for s in dns_servers:
                await s.close()

    return asyncio.run(asyncio.wait_for(main(), 30))


def error(message: str, action: str) -> tuple[Log, ...]:
    return (Log("error", message, action),)


def name_ok(dns_server: DNSServer, name="mail.example", address=CLIENT):
    dns_server.ptr(address, name + ".")
    dns_server.records(name, "A", address)
    dns_server.rule(name, "AAAA")


# -- every outcome of the client name lookup (docs/nginx-behaviour.md#resolver) -----------


def test_unix_client_is_tempunavail_without_a_lookup():
    async def test(resolver, server):
        assert await resolver.resolve(None) == ClientName(TEMPUNAVAIL)
        assert server.queries == []

    run(test)


def test_name_that_resolves_back_to_the_client():
    async def test(resolver, server):
        name_ok(server)
        assert await resolver.resolve(CLIENT) == ClientName("mail.example")
        assert server.queries == [(PTR, "PTR", "udp"), ("mail.example", "A", "udp"),
                                  ("mail.example", "AAAA", "udp")]

    run(test)


def test_ptr_name_is_lower_cased():
    async def test(resolver, server):
        server.ptr(CLIENT, "Mail.EXAMPLE.")
        server.records("mail.example", "A", CLIENT)
        server.rule("mail.example", "AAAA")
        assert await resolver.resolve(CLIENT) == ClientName("mail.example")

    run(test)


@pytest.mark.parametrize("rcode, host, text", [
    (3, UNAVAILABLE, "3: Host not found"),
    (2, TEMPUNAVAIL, "2: Server failure"),
    (4, TEMPUNAVAIL, "4: Unimplemented"),
    (5, TEMPUNAVAIL, "5: Operation refused"),
])
def test_ptr_errors(rcode, host, text):
    async def test(resolver, server):
        server.rule(PTR, "PTR", rcode=rcode)
        assert await resolver.resolve(CLIENT) == ClientName(host, error(
            "127.0.0.1 could not be resolved (%s)" % text, ACTION_ADDRESS))
        assert server.count() == 1

    run(test)


def test_empty_ptr_answer_is_nxdomain():
    async def test(resolver, server):
        server.rule(PTR, "PTR")
        assert await resolver.resolve(CLIENT) == ClientName(UNAVAILABLE, error(
            "127.0.0.1 could not be resolved (3: Host not found)", ACTION_ADDRESS))

    run(test)


def test_unknown_name_is_nxdomain_from_the_server():
    async def test(resolver, server):
        result = await resolver.resolve("127.0.0.9")
        assert result.host == UNAVAILABLE
        assert result.logs == error("127.0.0.9 could not be resolved (3: Host not found)",
                                    ACTION_ADDRESS)

    run(test)


def test_ptr_timeout():
    async def test(resolver, server):
        server.rule(PTR, "PTR", drop=True)
        started = time.monotonic()
        result = await resolver.resolve(CLIENT)
        elapsed = time.monotonic() - started
        assert result == ClientName(TEMPUNAVAIL, error(
            "127.0.0.1 could not be resolved (110: Operation timed out)", ACTION_ADDRESS))
        assert 0.5 <= elapsed < 2.0

    run(test, timeout=0.6)


@pytest.mark.parametrize("rule", [
    dict(rcode=1),  # FORMERR: nginx logs "DNS error" and ignores it
    dict(rcode=9),  # NOTAUTH and other rcodes above REFUSED
    dict(flags=dns.flags.AD),  # nginx wants (flags & 0xf870) == 0x8000
    dict(flags=dns.flags.CD),
    dict(records=[(PTR + ".", 60, "CH", "PTR", "x.example.")]),  # not class IN
    dict(records=[(PTR + ".", 60, "IN", "TXT", '"no ptr"')]),  # "no PTR type in DNS response"
])
def test_ignored_ptr_answers_leave_the_query_pending_until_timeout(rule):
    async def test(resolver, server):
        server.rule(PTR, "PTR", **rule)
        result = await resolver.resolve(CLIENT)
        assert result == ClientName(TEMPUNAVAIL, error(
            "127.0.0.1 could not be resolved (110: Operation timed out)", ACTION_ADDRESS))

    run(test, timeout=0.4)


@pytest.mark.parametrize("target, shown", [
    ("bad_name.example.", "bad_name.example"),
    (".", ""),  # the root: an empty name
    ("with\\032space.example.", "with space.example"),
    ("caf\\195\\169.example.", "caf\u00e9.example"),  # UTF-8 text: the same bytes in the log
    ("semi\\;colon.", "semi;colon"),
])
def test_invalid_ptr_names_are_tempunavail(target, shown):
    async def test(resolver, server):
        server.ptr(CLIENT, target)
        result = await resolver.resolve(CLIENT)
        assert result == ClientName(TEMPUNAVAIL, error(
            '127.0.0.1 resolved to invalid host name "%s"' % shown, ACTION_ADDRESS))
        assert server.count(rdtype="A") == 0

    run(test)


@pytest.mark.parametrize("rcode, host, text", [
    (3, UNAVAILABLE, "3: Host not found"),
    (2, TEMPUNAVAIL, "2: Server failure"),
    (5, TEMPUNAVAIL, "5: Operation refused"),
])
def test_forward_errors(rcode, host, text):
    async def test(resolver, server):
        server.ptr(CLIENT, "mail.example.")
        server.rule("mail.example", "A", rcode=rcode)
        server.rule("mail.example", "AAAA", rcode=rcode)
        assert await resolver.resolve(CLIENT) == ClientName(host, error(
            '"mail.example" could not be resolved (%s)' % text, ACTION_NAME))

    run(test)


def test_forward_without_any_address_is_nxdomain():
    async def test(resolver, server):
        server.ptr(CLIENT, "mail.example.")
        server.rule("mail.example", "A")
        server.rule("mail.example", "AAAA")
        assert await resolver.resolve(CLIENT) == ClientName(UNAVAILABLE, error(
            '"mail.example" could not be resolved (3: Host not found)', ACTION_NAME))

    run(test)


def test_forward_addresses_not_matching_the_client_are_unavailable_silently():
    async def test(resolver, server):
        server.ptr(CLIENT, "mail.example.")
        server.records("mail.example", "A", "127.0.0.2", "10.0.0.1")
        server.records("mail.example", "AAAA", "::1")
        assert await resolver.resolve(CLIENT) == ClientName(UNAVAILABLE)

    run(test)


@pytest.mark.parametrize("a, aaaa, code", [
    # the later answer's error wins, else the earlier one's: any error fails the lookup
    (dict(rcode=2), dict(records=[("mail.example.", 60, "IN", "AAAA", "::1")], delay=0.1), 2),
    (dict(records=[("mail.example.", 60, "IN", "A", CLIENT)]), dict(rcode=2, delay=0.1), 2),
    (dict(rcode=5), dict(rcode=2, delay=0.1), 2),
    (dict(rcode=2, delay=0.1), dict(rcode=5), 2),
    (dict(), dict(rcode=5, delay=0.1), 5),
])
def test_a_and_aaaa_combined_as_nginx_does(a, aaaa, code):
    async def test(resolver, server):
        server.ptr(CLIENT, "mail.example.")
        server.rule("mail.example", "A", **a)
        server.rule("mail.example", "AAAA", **aaaa)
        result = await resolver.resolve(CLIENT)
        assert result.host == TEMPUNAVAIL
        assert result.logs == error('"mail.example" could not be resolved (%d: %s)' % (
            code, strerror(code)), ACTION_NAME)

    run(test)


def test_ipv6_client_matched_by_aaaa():
    async def test(resolver, server):
        server.ptr("::1", "six.example.")
        server.rule("six.example", "A")
        server.records("six.example", "AAAA", "::1", delay=0.05)
        assert await resolver.resolve("::1") == ClientName("six.example")
        assert server.queries[0] == (reverse_name("::1"), "PTR", "udp")

    run(test)


def test_v4_mapped_client_asks_ip6_arpa_and_never_matches_an_a_record():
    async def test(resolver, server):
        mapped = "::ffff:127.0.0.1"
        server.ptr(mapped, "mail.example.")
        server.records("mail.example", "A", CLIENT)
        server.rule("mail.example", "AAAA")
        assert await resolver.resolve(mapped) == ClientName(UNAVAILABLE)
        assert server.queries[0][0].endswith(".ip6.arpa")
        result = await resolver.resolve("::ffff:127.0.0.9")  # nginx's text in the log
        assert result.logs == error(
            "::ffff:127.0.0.9 could not be resolved (3: Host not found)", ACTION_ADDRESS)

    run(test)


def test_ipv6_off_asks_a_only_and_ipv4_off_aaaa_only():
    async def v4_only(resolver, server):
        name_ok(server)
        assert await resolver.resolve(CLIENT) == ClientName("mail.example")
        assert server.count(rdtype="AAAA") == 0

    run(v4_only, ipv6=False)

    async def v6_only(resolver, server):
        name_ok(server)  # A would match, but is never asked
        assert await resolver.resolve(CLIENT) == ClientName(UNAVAILABLE, error(
            '"mail.example" could not be resolved (3: Host not found)', ACTION_NAME))
        assert server.count(rdtype="A") == 0

    run(v6_only, ipv4=False)


def test_cname_is_followed():
    async def test(resolver, server):
        server.ptr(CLIENT, "mail.example.")
        server.records("mail.example", "CNAME", "real.example.")
        server.records("real.example", "A", CLIENT)
        server.rule("real.example", "AAAA")
        assert await resolver.resolve(CLIENT) == ClientName("mail.example")
        assert server.count("real.example", "A") == 1

    run(test)


def test_cname_with_addresses_uses_the_addresses():
    async def test(resolver, server):
        server.ptr(CLIENT, "mail.example.")
        server.rule("mail.example", "A", records=[
            ("mail.example.", 60, "IN", "CNAME", "real.example."),
            ("real.example.", 60, "IN", "A", CLIENT)])
        server.rule("mail.example", "AAAA")
        assert await resolver.resolve(CLIENT) == ClientName("mail.example")
        assert server.count("real.example") == 0

    run(test)


def test_cname_loop_ends_in_nxdomain():
    async def test(resolver, server):
        server.ptr(CLIENT, "a.example.")
        server.records("a.example", "CNAME", "b.example.")
        server.records("b.example", "CNAME", "a.example.")
        assert await resolver.resolve(CLIENT) == ClientName(UNAVAILABLE, error(
            '"a.example" could not be resolved (3: Host not found)', ACTION_NAME))
        assert server.count() <= 1 + 2 * 2  # each hop asked once, then cached

    run(test)


def test_empty_label_is_nxdomain_without_a_query():
    async def test(resolver, server):
        server.ptr(CLIENT, "a\\.\\.b.example.")  # one label holding "a..b"
        assert await resolver.resolve(CLIENT) == ClientName(UNAVAILABLE, error(
            '"a..b.example" could not be resolved (3: Host not found)', ACTION_NAME))
        assert server.count(rdtype="A") == 0

    run(test)


def test_forward_timeout():
    async def test(resolver, server):
        server.ptr(CLIENT, "mail.example.")
        server.rule("mail.example", "A", drop=True)
        server.rule("mail.example", "AAAA")
        started = time.monotonic()
        assert await resolver.resolve(CLIENT) == ClientName(TEMPUNAVAIL, error(
            '"mail.example" could not be resolved (110: Operation timed out)', ACTION_NAME))
        assert time.monotonic() - started < 2.0

    run(test, timeout=0.5)


@pytest.mark.parametrize("a_delay, aaaa_delay, code", [
    # the TXT-only A answer comes last: "no A or CNAME types", nothing more: time out
    (0.1, 0.0, 110),
    # it comes first: the empty AAAA answer then finds no address at all: NXDOMAIN
    (0.0, 0.1, 3),
])
def test_answer_without_a_or_cname(a_delay, aaaa_delay, code):
    async def test(resolver, server):
        server.ptr(CLIENT, "mail.example.")
        server.rule("mail.example", "A", delay=a_delay,
                    records=[("mail.example.", 60, "IN", "TXT", '"x"')])
        server.rule("mail.example", "AAAA", delay=aaaa_delay)
        result = await resolver.resolve(CLIENT)
        assert result.logs == error('"mail.example" could not be resolved (%d: %s)' % (
            code, strerror(code)), ACTION_NAME)

    run(test, timeout=0.5)


def test_unexpected_record_type_in_answer_is_ignored():
    async def test(resolver, server):
        server.ptr(CLIENT, "mail.example.")
        server.rule("mail.example", "A", rcode=0, records=[
            ("mail.example.", 60, "IN", "AAAA", "::1")], before=[])
        server.rule("mail.example", "AAAA")
        result = await resolver.resolve(CLIENT)
        assert result.logs[0].message.endswith("(110: Operation timed out)")

    run(test, timeout=0.4)


def test_truncated_answer_is_asked_again_over_tcp():
    async def test(resolver, server):
        server.ptr(CLIENT, "mail.example.")
        server.rule("mail.example", "A", truncate=True,
                    records=[("mail.example.", 60, "IN", "A", CLIENT)])
        server.rule("mail.example", "AAAA")
        assert await resolver.resolve(CLIENT) == ClientName("mail.example")
        assert ("mail.example", "A", "tcp") in server.queries

    run(test)


def test_junk_before_the_answer_is_ignored():
    async def test(resolver, server):
        junk = [garbage, wrong_id, other_question, answer_with(rcode=1),
                answer_with(flags=dns.flags.AD, records=(("mail.example.", 60, "IN", "A",
                                                          "10.0.0.1"),)),
                answer_with(records=(("mail.example.", 60, "CH", "TXT", '"x"'),))]
        server.ptr(CLIENT, "mail.example.", before=[garbage, wrong_id])
        server.records("mail.example", "A", CLIENT, before=junk)
        server.rule("mail.example", "AAAA", before=junk)
        assert await resolver.resolve(CLIENT) == ClientName("mail.example")

    run(test)


def test_silent_server_is_skipped_at_the_resend():
    async def test(resolver, silent, answering):
        for name, rdtype in ((PTR, "PTR"), ("mail.example", "A"), ("mail.example", "AAAA")):
            silent.rule(name, rdtype, drop=True)
        name_ok(answering)
        started = time.monotonic()
        # two lookups start on different servers (round robin), both end on the answering one
        results = await asyncio.gather(resolver.resolve(CLIENT), resolver.resolve("127.0.0.1"))
        assert results == [ClientName("mail.example")] * 2
        assert time.monotonic() - started < 1.5
        assert silent.count() >= 1 and answering.count(PTR) >= 1

    run(test, servers=2, resend=0.2, timeout=3.0)


def test_unreachable_server_times_out_quietly():
    async def test(resolver, server):
        return await resolver.resolve(CLIENT)

    # a closed port: ICMP port unreachable on every send
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    async def main():
        resolver = ClientNameResolver(Resolver((("127.0.0.1", port),)), 0.5,
                                      resend_interval=0.1)
        return await resolver.resolve(CLIENT)

    assert asyncio.run(main()) == ClientName(TEMPUNAVAIL, error(
        "127.0.0.1 could not be resolved (110: Operation timed out)", ACTION_ADDRESS))


# -- cache, sharing, bounds ------------------------------------------------------------------


def test_answers_are_cached_and_errors_are_not():
    async def test(resolver, server):
        name_ok(server)
        for _ in range(3):
            assert await resolver.resolve(CLIENT) == ClientName("mail.example")
        assert server.count() == 3
        server.rule(reverse_name("127.0.0.2"), "PTR", rcode=2)
        for _ in range(2):
            assert (await resolver.resolve("127.0.0.2")).host == TEMPUNAVAIL
        assert server.count(reverse_name("127.0.0.2")) == 2
        resolver.clear_cache()
        await resolver.resolve(CLIENT)
        assert server.count() == 3 + 2 + 3

    run(test)


def test_ttl_expires_and_valid_overrides_it():
    async def short_ttl(resolver, server):
        server.ptr(CLIENT, "mail.example.", ttl=1)
        server.records("mail.example", "A", CLIENT, ttl=1)
        server.rule("mail.example", "AAAA")
        await resolver.resolve(CLIENT)
        await resolver.resolve(CLIENT)
        assert server.count(PTR) == 1
        await asyncio.sleep(1.1)
        await resolver.resolve(CLIENT)
        assert server.count(PTR) == 2

    run(short_ttl)

    async def valid(resolver, server):
        server.ptr(CLIENT, "mail.example.", ttl=3600)
        server.records("mail.example", "A", CLIENT, ttl=3600)
        server.rule("mail.example", "AAAA")
        await resolver.resolve(CLIENT)
        await asyncio.sleep(1.1)
        await resolver.resolve(CLIENT)
        assert server.count(PTR) == 2

    run(valid, valid=1)

    async def zero_ttl(resolver, server):
        server.ptr(CLIENT, "mail.example.", ttl=0)
        name_ok(server)
        server.ptr(CLIENT, "mail.example.", ttl=0)
        await resolver.resolve(CLIENT)
        await resolver.resolve(CLIENT)
        assert server.count(PTR) == 2

    run(zero_ttl)


def test_cache_is_bounded_lru():
    async def test(resolver, server):
        for n in (1, 2, 3):
            name_ok(server, "h%d.example" % n, "127.0.0.%d" % n)
        for n in (1, 2, 3):
            await resolver.resolve("127.0.0.%d" % n)
        assert len(resolver._addresses) == 2 and len(resolver._names) == 2
        await resolver.resolve("127.0.0.3")  # still cached
        assert server.count(reverse_name("127.0.0.3")) == 1
        await resolver.resolve("127.0.0.1")  # evicted: asked again
        assert server.count(reverse_name("127.0.0.1")) == 2

    run(test, cache_size=2)


def test_concurrent_lookups_share_one_query():
    async def test(resolver, server):
        name_ok(server)
        server.rules[(PTR, "PTR")].delay = 0.1
        results = await asyncio.gather(*(resolver.resolve(CLIENT) for _ in range(20)))
        assert results == [ClientName("mail.example")] * 20
        assert server.count() == 3
        assert resolver._inflight == {}

    run(test)


def test_cancelled_lookup_leaves_the_shared_query_to_the_others():
    async def test(resolver, server):
        name_ok(server)
        server.rules[(PTR, "PTR")].delay = 0.2
        first = asyncio.ensure_future(resolver.resolve(CLIENT))
        second = asyncio.ensure_future(resolver.resolve(CLIENT))
        await asyncio.sleep(0.05)
        first.cancel()
        assert await second == ClientName("mail.example")
        with pytest.raises(asyncio.CancelledError):
            await first
        assert server.count(PTR) == 1

    run(test)


def test_whole_lookup_is_bounded_by_two_timeouts():
    async def test(resolver, server):
        server.rule(PTR, "PTR", delay=0.25, records=[(PTR + ".", 60, "IN", "PTR", "m.example.")])
        server.rule("m.example", "A", drop=True)
        server.rule("m.example", "AAAA", drop=True)
        started = time.monotonic()
        result = await resolver.resolve(CLIENT)
        assert result.host == TEMPUNAVAIL
        assert 0.6 < time.monotonic() - started < 0.6 + 0.25 + 1.0

    run(test, timeout=0.6, resend=0.1)


def test_non_address_client_is_tempunavail():
    async def test(resolver, server):
        assert await resolver.resolve("not-an-ip") == ClientName(TEMPUNAVAIL)
        assert server.queries == []

    run(test)


def test_strerror():
    assert [strerror(n) for n in (1, 2, 3, 4, 5, 110)] == [
        "Format error", "Server failure", "Host not found", "Unimplemented",
        "Operation refused", "Operation timed out"]
    assert strerror(0) == strerror(6) == strerror(111) == "Unknown error"


def test_from_server_configuration():
    config = Config.from_string("""
        mail {
            auth_http 127.0.0.1:9000;
            server { listen 127.0.0.1:2525; protocol smtp;
                     resolver 127.0.0.1:5300 valid=30s ipv6=off; resolver_timeout 3s; }
            server { listen 127.0.0.1:2526; protocol smtp; }
        }
    """)
    resolver = ClientNameResolver.from_server(config.servers[0])
    assert resolver.timeout == 3.0
    assert resolver.config == Resolver((("127.0.0.1", 5300),), valid=30, ipv4=True, ipv6=False)
    assert ClientNameResolver.from_server(config.servers[1]) is None
