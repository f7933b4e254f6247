"""A small scripted authoritative DNS server on a loopback port (UDP and TCP).

Tests tell it, per (name, type), what to answer: records, an rcode, a delay, silence,
a truncated UDP answer, extra datagrams before the real answer (garbage, a wrong id,
an answer with flags nginx rejects ...).  Unknown names get NXDOMAIN.  Every query
is recorded in ``queries`` as ``(name, type, transport)``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from dataclasses import dataclass, field
from typing import Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

Extra = Callable[[dns.message.Message], bytes]


@dataclass
class Rule:
    """How to answer one (name, type)."""

    rcode: int = dns.rcode.NOERROR
    records: list[tuple[str, int, str, str, str]] = field(default_factory=list)
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False  # over UDP: TC set, no records; over TCP: the full answer
    flags: int = 0  # added to the answer's flags
    before: list[Extra] = field(default_factory=list)  # datagrams sent first (UDP)


def garbage(query: dns.message.Message) -> bytes:
    return b"\x12\x34garbage"


def wrong_id(query: dns.message.Message) -> bytes:
    response = dns.message.make_response(query)
    response.id = (query.id + 1) & 0xFFFF
    response.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "10.9.9.9"))
    return response.to_wire()


def answer_with(rcode: int = 0, flags: int = 0, records: tuple = ()) -> Extra:
    """A well-formed answer to the query, with the given rcode, extra flags and records."""

    def make(query: dns.message.Message) -> bytes:
        response = dns.message.make_response(query)
        response.set_rcode(rcode)
        response.flags |= flags
        for name, ttl, rdclass, rdtype, rdata in records:
            response.answer.append(dns.rrset.from_text(name, ttl, rdclass, rdtype, rdata))
        return response.to_wire()

    return make


def other_question(query: dns.message.Message) -> bytes:
    other = dns.message.make_query("other.example.", query.question[0].rdtype)
    other.id = query.id
    response = dns.message.make_response(other)
    response.answer.append(dns.rrset.from_text("other.example.", 60, "IN", "A", "10.9.9.9"))
    return response.to_wire()


class DNSServer:
    """The scripted server; ``address`` is ``(host, port)`` once started."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.rules: dict[tuple[str, str], Rule] = {}
        self.queries: list[tuple[str, str, str]] = []
        self.address: tuple[str, int] | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- scripting ---------------------------------------------------------------

    def rule(self, name: str, rdtype: str, **kw) -> Rule:
        rule = Rule(**kw)
        self.rules[(name.lower().rstrip("."), rdtype)] = rule
        return rule

    def records(self, name: str, rdtype: str, *rdatas: str, ttl: int = 300, **kw) -> Rule:
        owner = name if name.endswith(".") else name + "."
        return self.rule(name, rdtype, records=[(owner, ttl, "IN", rdtype, r) for r in rdatas],
                         **kw)

    def ptr(self, address: str, target: str, ttl: int = 300, **kw) -> Rule:
        return self.records(reverse_name(address), "PTR", target, ttl=ttl, **kw)

    def count(self, name: str | None = None, rdtype: str | None = None) -> int:
        return sum(1 for n, t, _ in self.queries
                   if (name is None or n == name.lower().rstrip(".")) and (rdtype is None or t == rdtype))

    # -- serving --------------------------------------------------------------------

    async def start(self) -> "DNSServer":
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(20):  # UDP and TCP on one free port
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _UDP(self), local_addr=(self.host, 0), family=family)
            port = self._udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError:
                self._udp.close()
                continue
            self.address = (self.host, port)
            return self
        raise RuntimeError("no free port for the DNS server")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    def _lookup(self, query: dns.message.Message, transport: str) -> Rule:
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype, transport))
        # an alias answers every type with its CNAME, as an authoritative server does
        return self.rules.get((name, rdtype)) or self.rules.get((name, "CNAME")) or Rule(
            rcode=dns.rcode.NXDOMAIN)

    @staticmethod
    def _answer(query: dns.message.Message, rule: Rule, tcp: bool) -> bytes:
        response = dns.message.make_response(query)
        response.set_rcode(rule.rcode)
        response.flags |= rule.flags
        if rule.truncate and not tcp:
            response.flags |= dns.flags.TC
        else:
            for name, ttl, rdclass, rdtype, rdata in rule.records:
                response.answer.append(dns.rrset.from_text(name, ttl, rdclass, rdtype, rdata))
        return response.to_wire()

    def datagram(self, data: bytes, addr, transport: asyncio.DatagramTransport) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        rule = self._lookup(query, "udp")
        if rule.drop:
            return
        task = asyncio.get_running_loop().create_task(self._reply(query, rule, addr, transport))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply(self, query, rule: Rule, addr, transport) -> None:
        if rule.delay:
            await asyncio.sleep(rule.delay)
        for extra in rule.before:
            transport.sendto(extra(query), addr)
        transport.sendto(self._answer(query, rule, tcp=False), addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = struct.unpack("!H", await reader.readexactly(2))[0]
                query = dns.message.from_wire(await reader.readexactly(length))
                rule = self._lookup(query, "tcp")
                if rule.drop:
                    continue
                if rule.delay:
                    await asyncio.sleep(rule.delay)
                wire = self._answer(query, rule, tcp=True)
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def reverse_name(address: str) -> str:
    """The PTR name nginx asks for (ip6.arpa for every IPv6 address, v4-mapped too)."""
    packed = ipaddress.ip_address(address).packed
    if len(packed) == 4:
        return ".".join(str(b) for b in reversed(packed)) + ".in-addr.arpa"
    return ".".join("%x" % (b >> s & 0xF) for b in reversed(packed) for s in (0, 4)) + ".ip6.arpa"


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.server.datagram(data, addr, self.transport)
