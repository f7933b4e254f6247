"""The SMTP client name lookup against the ``resolver`` servers, as nginx does it.

Before an SMTP greeting, with ``resolver`` set, nginx asks the configured DNS servers
(never the system resolver) for the client's name (ngx_mail_smtp_init_session(),
ngx_mail_smtp_resolve_addr_handler(), ngx_mail_smtp_validate_host(),
ngx_mail_smtp_resolve_name() and ngx_mail_smtp_resolve_name_handler() in
src/mail/ngx_mail_smtp_handler.c; docs/nginx-behaviour.md#resolver):

1. PTR of the client address.  An error logs ``ADDR could not be resolved (N: TEXT)``
   and gives ``[UNAVAILABLE]`` for NXDOMAIN, ``[TEMPUNAVAIL]`` otherwise.  A name that is
   empty or holds a byte outside ``[A-Za-z0-9.-]`` logs ``ADDR resolved to invalid host
   name "NAME"`` and gives ``[TEMPUNAVAIL]``.
2. A (unless ``ipv4=off``) and AAAA (unless ``ipv6=off``) of that name, following
   CNAMEs.  An error logs ``"NAME" could not be resolved (N: TEXT)`` (NXDOMAIN gives
   ``[UNAVAILABLE]``, others ``[TEMPUNAVAIL]``); no address equal to the client's gives
   ``[UNAVAILABLE]``; a match gives NAME.

Each lookup has ``resolver_timeout`` (error 110, ``Operation timed out``).  The DNS
rules are those of ``ngx_resolver.c``: queries without EDNS and with RD set, sent over
UDP to the servers in turn and resent to the next one every :data:`RESEND_INTERVAL`
seconds; TCP after a truncated answer; FORMERR and rcodes above REFUSED, responses
with unexpected flags, questions, classes or record types are ignored (the query stays
pending); an empty NOERROR answer is NXDOMAIN; of the A and AAAA queries, any error
makes the lookup fail.  Names are lower-cased.  Answers are cached for their TTL (or
``valid=``), errors are not; concurrent lookups of one key share one query.

Why not ``dns.asyncquery.udp``: nginx keeps listening after an answer it ignores and
resends on its own schedule, and dnspython's asyncio datagram socket drops datagrams
that arrive while no receive is pending; so the UDP exchange is written here on
dnspython's message classes, with a small bounded receive queue.
"""

from __future__ import annotations

import asyncio
import collections
import re
from dataclasses import dataclass
from typing import Any, Callable

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype

from mailgate.config.model import Resolver, ServerConfig
from mailgate.inet import TEMPUNAVAIL, UNAVAILABLE, IPAddress, format_ip, peer_ip, sockaddr_family
from mailgate.log import printable
from mailgate.protocol.events import Log

__all__ = [
    "ACTION_ADDRESS",
    "ACTION_NAME",
    "ClientName",
    "ClientNameResolver",
    "NXDOMAIN",
    "RESEND_INTERVAL",
    "TIMEDOUT",
    "strerror",
]

ACTION_ADDRESS = "in resolving client address"
ACTION_NAME = "in resolving client hostname"

FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 1, 2, 3, 4, 5
TIMEDOUT = 110  # NGX_RESOLVE_TIMEDOUT is NGX_ETIMEDOUT
RESEND_INTERVAL = 5.0  # nginx's resend_timeout
MAX_RECURSION = 50  # CNAMEs followed before NXDOMAIN (NGX_RESOLVER_MAX_RECURSION)
_RECEIVE_QUEUE = 16  # datagrams held for one query
_ERRORS = ("Format error", "Server failure", "Host not found", "Unimplemented",
           "Operation refused")
_VALID_NAME = re.compile(rb"[A-Za-z0-9.-]+\Z")
_IN = dns.rdataclass.IN
_A, _AAAA, _CNAME, _PTR = dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME, dns.rdatatype.PTR


def strerror(code: int) -> str:
    """``ngx_resolver_strerror``: the text of a resolver error code."""
    if 0 < code < 6:
        return _ERRORS[code - 1]
    if code == TIMEDOUT:
        return "Operation timed out"
    return "Unknown error"


@dataclass(frozen=True, slots=True)
class ClientName:
    """The SMTP client host (``Client-Host``, XCLIENT ``NAME``) and the lines to log.

    ``host`` is the name, ``[UNAVAILABLE]`` or ``[TEMPUNAVAIL]``; each of ``logs`` is an
    ``error`` line with its action (``in resolving client address|hostname``).
    """

    host: str
    logs: tuple[Log, ...] = ()


# -- answers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    """One response as ngx_resolver_process_a/_ptr read it."""

    code: int
    count: int = 0  # answer records (ANCOUNT)
    addresses: tuple[IPAddress, ...] = ()
    cname: bytes | None = None
    name: bytes | None = None  # PTR
    ttl: int = 0


def _ttl(value: int) -> int:
    return 0 if value >= 0x80000000 else value  # a negative int32 counts as 0


def _text(name: dns.name.Name) -> bytes:
    """ngx_resolver_copy: labels joined by dots, ASCII lower-cased; the root is empty."""
    return b".".join(label.lower() for label in name.labels if label)


def _acceptable(response: dns.message.Message, tcp: bool) -> bool:
    """The header checks of ngx_resolver_process_response."""
    flags = response.flags
    if not flags & dns.flags.QR or response.opcode() != 0 or flags & 0x0070:
        return False  # nginx wants (flags & 0xf870) == 0x8000
    if tcp and flags & dns.flags.TC:
        return False
    if len(response.question) != 1:
        return False
    rcode = response.rcode()
    return FORMERR < rcode <= REFUSED or rcode == 0


def _read_ptr(response: dns.message.Message) -> _Answer | None:
    """A PTR response, or None to ignore it (nginx logs and keeps the query pending)."""
    code = response.rcode()
    count = sum(len(rrset) for rrset in response.answer)
    if code == 0 and count == 0:
        code = NXDOMAIN
    if code:
        return _Answer(code)
    for rrset in response.answer:
        if rrset.rdclass != _IN:
            return None
        if rrset.rdtype == _PTR:
            return _Answer(0, count, name=_text(rrset[0].target), ttl=_ttl(rrset.ttl))
    return None  # "no PTR type in DNS response"


def _read_addresses(response: dns.message.Message, qtype: int) -> _Answer | None:
    """An A or AAAA response, or None to ignore it."""
    code = response.rcode()
    count = sum(len(rrset) for rrset in response.answer)
    if code or not count:
        return _Answer(code, count)
    addresses: list[IPAddress] = []
    cname = None
    ttl = 0xFFFFFFFF
    for rrset in response.answer:
        if rrset.rdclass != _IN or rrset.name == dns.name.root:
            return None
        ttl = min(ttl, _ttl(rrset.ttl))
        if rrset.rdtype in (_A, _AAAA):
            if rrset.rdtype != qtype:
                return None  # "unexpected A/AAAA record in DNS response"
            addresses.extend(peer_ip(rdata.address) for rdata in rrset)
        elif rrset.rdtype == _CNAME:
            cname = _text(rrset[-1].target)
    return _Answer(0, count, tuple(addresses), cname, ttl=ttl)


class _Combined:
    """The A + AAAA state of one name, updated per response in arrival order.

    It mirrors ngx_resolver_process_a: an error in either query fails the lookup (with
    the later response's code, else the earlier one's); two empty answers are NXDOMAIN;
    addresses are exported once neither query is pending; a CNAME is followed only when
    neither query gave addresses.
    """

    def __init__(self, pending: set[int]) -> None:
        self.pending = pending
        self.addresses: dict[int, tuple[IPAddress, ...]] = {}
        self.code = 0
        self.ttl = 0xFFFFFFFF

    def feed(self, qtype: int, answer: _Answer) -> tuple[str, Any] | None:
        """Returns None (wait), ("ok", addresses), ("error", code), ("cname", name), ("stall", None)."""
        self.pending.discard(qtype)
        waiting = bool(self.pending)
        code = answer.code or self.code
        if answer.code == 0 and answer.count:
            self.ttl = min(self.ttl, answer.ttl)
        if code == 0 and answer.count == 0:
            self.addresses[qtype] = ()
            if waiting:
                return None
            if self._all():
                return "ok", self._all()
            code = NXDOMAIN
        if code:
            self.addresses[qtype] = ()
            if waiting:
                self.code = code
                return None
            return "error", code
        self.addresses[qtype] = answer.addresses
        if waiting and answer.addresses:
            return None
        if not waiting and self._all():
            return "ok", self._all()
        if answer.cname is not None:
            return None if waiting else ("cname", answer.cname)
        return None if waiting else ("stall", None)  # "no A or CNAME types in DNS response"

    def _all(self) -> tuple[IPAddress, ...]:
        return self.addresses.get(_A, ()) + self.addresses.get(_AAAA, ())


# -- the UDP exchange ---------------------------------------------------------------------------


class _Datagrams(asyncio.DatagramProtocol):
    """A connected UDP socket's datagrams, in a small bounded queue."""

    def __init__(self) -> None:
        self.queue: collections.deque[bytes] = collections.deque(maxlen=_RECEIVE_QUEUE)
        self.arrived = asyncio.Event()

    def datagram_received(self, data: bytes, addr) -> None:
        self.queue.append(data)
        self.arrived.set()

    def error_received(self, exc: Exception) -> None:
        pass  # e.g. ICMP port unreachable: nginx logs it and waits for the resend


class _Truncated(Exception):
    """A UDP answer had TC set: ask again over TCP."""


def _reverse_name(address: IPAddress) -> dns.name.Name:
    """The PTR name nginx queries (ip6.arpa for every IPv6 address, v4-mapped included)."""
    if address.version == 4:
        labels = [b"%d" % octet for octet in reversed(address.packed)] + [b"in-addr"]
    else:
        labels = [b"%x" % (octet >> shift & 0xF)
                  for octet in reversed(address.packed) for shift in (0, 4)] + [b"ip6"]
    return dns.name.Name(labels + [b"arpa", b""])


def _query_name(name: bytes) -> dns.name.Name | None:
    """The DNS name of ``name``; None where nginx declines it (an empty label)."""
    labels = name.split(b".")
    if not name or not all(labels):
        return None
    try:
        return dns.name.Name(labels + [b""])
    except dns.exception.DNSException:  # a label over 63 bytes, a name over 255
        return None


class _TTLCache:
    """An LRU map whose entries expire; ``size`` bounds it."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: collections.OrderedDict[Any, tuple[float, Any]] = collections.OrderedDict()

    def get(self, key, now: float):
        entry = self._data.get(key)
        if entry is None:
            return None
        if now >= entry[0]:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry[1]

    def put(self, key, value, ttl: float, now: float) -> None:
        if ttl <= 0 or self._size <= 0:
            return
        self._data[key] = (now + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


class ClientNameResolver:
    """Resolves SMTP client names against one ``resolver`` configuration.

    Create one per ``resolver``/``resolver_timeout`` pair (one per server block, see
    :meth:`from_server`) and share it between that server's sessions: it holds the
    answer cache (at most ``cache_size`` addresses and as many names) and the queries
    in flight.  ``resend_interval`` is nginx's 5 s; tests shorten it.
    """

    def __init__(self, config: Resolver, timeout: float, *, cache_size: int = 10000,
                 resend_interval: float = RESEND_INTERVAL) -> None:
        self.config = config
        self.timeout = timeout
        self.resend_interval = resend_interval
        self._servers = config.servers
        self._next_server = 0
        self._addresses = _TTLCache(cache_size)  # address bytes -> name
        self._names = _TTLCache(cache_size)  # name -> addresses
        self._inflight: dict[tuple, asyncio.Future] = {}

    @classmethod
    def from_server(cls, server: ServerConfig, **options) -> "ClientNameResolver | None":
        """The resolver of a server block; None when ``resolver`` is off."""
        if server.resolver is None:
            return None
        return cls(server.resolver, server.resolver_timeout, **options)

    def clear_cache(self) -> None:
        """Forget every cached answer."""
        self._addresses.clear()
        self._names.clear()

    # -- the lookup ----------------------------------------------------------------

    async def resolve(self, client: str | None) -> ClientName:
        """The client's host for SMTP; ``client`` is its IP text (None: a UNIX socket).

        Never raises for anything the network does; cancelling it abandons the lookup
        (a query shared with other sessions goes on for them).
        """
        if client is None:
            return ClientName(TEMPUNAVAIL)
        address = peer_ip(client)
        if address is None:
            return ClientName(TEMPUNAVAIL)
        text = format_ip(address)
        now = asyncio.get_running_loop().time()
        code, name = 0, self._addresses.get(address.packed, now)
        if name is None:
            code, name = await self._lookup(("ptr", address.packed), self._ptr, address)
        if code:
            return ClientName(UNAVAILABLE if code == NXDOMAIN else TEMPUNAVAIL, (Log(
                "error", "%s could not be resolved (%d: %s)" % (text, code, strerror(code)),
                ACTION_ADDRESS),))
        if not _VALID_NAME.match(name):
            return ClientName(TEMPUNAVAIL, (Log(
                "error", '%s resolved to invalid host name "%s"' % (text, printable(name)),
                ACTION_ADDRESS),))
        host = name.decode("ascii")
        addresses = self._names.get(name, asyncio.get_running_loop().time())
        if isinstance(addresses, tuple):
            code = 0
        else:
            code, addresses = await self._lookup(("name", name), self._forward, name)
        if code:
            return ClientName(UNAVAILABLE if code == NXDOMAIN else TEMPUNAVAIL, (Log(
                "error", '"%s" could not be resolved (%d: %s)' % (host, code, strerror(code)),
                ACTION_NAME),))
        return ClientName(host if address in addresses else UNAVAILABLE)

    async def _lookup(self, key: tuple, lookup: Callable, argument) -> tuple[int, Any]:
        """One shared lookup per key; each caller waits at most its own timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        future = self._inflight.get(key)
        if future is None:
            future = loop.create_task(lookup(argument, deadline))
            self._inflight[key] = future
            future.add_done_callback(lambda _: self._inflight.pop(key, None))
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return TIMEDOUT, None

    async def _ptr(self, address: IPAddress, deadline: float) -> tuple[int, bytes | None]:
        loop = asyncio.get_running_loop()
        name = self._addresses.get(address.packed, loop.time())
        if name is not None:
            return 0, name
        answer = await self._exchange(_reverse_name(address), _PTR, deadline, _read_ptr)
        if answer is None:
            return TIMEDOUT, None
        if answer.code:
            return answer.code, None
        self._addresses.put(address.packed, answer.name, self.config.valid or answer.ttl,
                            loop.time())
        return 0, answer.name

    async def _forward(self, name: bytes, deadline: float) -> tuple[int, tuple[IPAddress, ...]]:
        """A/AAAA of ``name``, CNAMEs followed; each hop is cached on its own.

        The cache maps a name to its addresses (a tuple) or to its CNAME target (bytes).
        """
        loop = asyncio.get_running_loop()
        for _ in range(MAX_RECURSION + 1):
            known = self._names.get(name, loop.time())
            if known is None:
                outcome, known, ttl = await self._query_name(name, deadline)
                if outcome == "error":
                    return known, ()
                self._names.put(name, known, self.config.valid or ttl, loop.time())
            if isinstance(known, tuple):
                return 0, known
            name = known
        return NXDOMAIN, ()

    async def _query_name(self, name: bytes, deadline: float) -> tuple[str, Any, int]:
        qname = _query_name(name)
        if qname is None:
            return "error", NXDOMAIN, 0
        qtypes = [qtype for qtype, on in ((_A, self.config.ipv4), (_AAAA, self.config.ipv6))
                  if on]
        state = _Combined(set(qtypes))
        loop = asyncio.get_running_loop()
        tasks = {loop.create_task(self._exchange(
            qname, qtype, deadline, lambda r, t=qtype: _read_addresses(r, t), tcp_retry=True)):
            qtype for qtype in qtypes}
        try:
            while tasks:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    qtype = tasks.pop(task)
                    answer = task.result()
                    if answer is None:
                        continue  # this query timed out: the lookup times out
                    result = state.feed(qtype, answer)
                    if result is None:
                        continue
                    kind, value = result
                    if kind == "stall":
                        await asyncio.sleep(max(0.0, deadline - loop.time()))
                        return "error", TIMEDOUT, 0
                    return kind, value, state.ttl
            return "error", TIMEDOUT, 0
        finally:
            for task in tasks:
                task.cancel()

    async def _exchange(self, qname: dns.name.Name, qtype: int, deadline: float,
                        read: Callable[[dns.message.Message], _Answer | None],
                        tcp_retry: bool = False) -> _Answer | None:
        """Ask the servers in turn until an answer ``read`` accepts; None at the deadline.

        With ``tcp_retry`` (A/AAAA), a truncated UDP answer makes this and later attempts
        use TCP; nginx reads a truncated PTR answer as it is.
        """
        loop = asyncio.get_running_loop()
        start = self._next_server
        self._next_server = (start + 1) % len(self._servers)
        tcp = False
        attempt = 0
        while True:
            now = loop.time()
            if now >= deadline:
                return None
            until = min(deadline, now + self.resend_interval)
            host, port = self._servers[(start + attempt) % len(self._servers)]
            attempt += 1
            query = dns.message.make_query(qname, qtype, use_edns=False)
            try:
                if not tcp:
                    try:
                        answer = await self._udp(query, host, port, until, read, tcp_retry)
                    except _Truncated:
                        tcp = True
                if tcp:
                    answer = await self._tcp(query, host, port, until, read)
            except Exception:  # whatever the network did, the query stays pending
                answer = None
            if answer is not None:
                return answer
            await asyncio.sleep(max(0.0, until - loop.time()))

    @staticmethod
    async def _udp(query: dns.message.Message, host: str, port: int, until: float,
                   read: Callable, tcp_retry: bool) -> _Answer | None:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Datagrams, family=sockaddr_family((host, port)), remote_addr=(host, port))
        try:
            transport.sendto(query.to_wire())
            while True:
                while protocol.queue:
                    data = protocol.queue.popleft()
                    try:
                        response = dns.message.from_wire(data, one_rr_per_rrset=True)
                    except Exception:  # any malformed datagram is ignored, as nginx does
                        continue
                    if not query.is_response(response) or not _acceptable(response, False):
                        continue
                    if tcp_retry and response.flags & dns.flags.TC:
                        raise _Truncated
                    answer = read(response)
                    if answer is not None:
                        return answer
                protocol.arrived.clear()
                remaining = until - loop.time()
                if remaining <= 0:
                    return None
                try:
                    await asyncio.wait_for(protocol.arrived.wait(), remaining)
                except asyncio.TimeoutError:
                    return None
        finally:
            transport.close()

    @staticmethod
    async def _tcp(query: dns.message.Message, host: str, port: int, until: float,
                   read: Callable) -> _Answer | None:
        remaining = until - asyncio.get_running_loop().time()
        if remaining <= 0:
            return None
        response = await dns.asyncquery.tcp(query, host, timeout=remaining, port=port,
                                            one_rr_per_rrset=True)
        if not _acceptable(response, True):
            return None
        return read(response)
