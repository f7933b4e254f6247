"""Target ``dns_answer``: DNS answers to the SMTP client-name lookup (``proxy/resolver.py``).

With ``resolver`` set, an SMTP session asks for the client's PTR name, then that
name's A and AAAA records; any host that can send UDP datagrams to the proxy's port
may answer.  Each datagram goes through the resolver's own reading, as in its
``_udp`` loop: dnspython's ``from_wire`` (a datagram it refuses is ignored, as nginx
does), the query match, nginx's header checks (``_acceptable``), the PTR or A/AAAA
reading and, for names, the A + AAAA combination of ``ngx_resolver_process_a``;
a PTR name is then checked and turned into the next query as ``resolve`` does.  The
sockets are left out: a failure inside the resolver's exchange would be swallowed
there as a timeout, so this target calls the readers itself.

Input: byte 0 chooses the lookup (bit 0: the PTR of 127.0.0.1, else A and AAAA of
``client.test``; bit 1: over TCP); then steps (:mod:`tests.fuzz.common`, ``WIDE``
sizes), each a datagram answering the A query (odd operation) or AAAA (even); the
first two bytes of a datagram are taken as the query's ID, so that it can match.

Contract: no exception from the readers; ``_read_ptr``/``_read_addresses`` return None
or an answer with a code, a count, IP addresses and bytes names; the combination ends
in ``ok`` (addresses), ``error`` (a code), ``cname`` (a name) or ``stall``; a PTR name
is either refused by the name check or makes a valid query name (or NXDOMAIN).
"""

from __future__ import annotations

import functools
import ipaddress

import dns.flags
import dns.message
import dns.name
import dns.rdatatype
from mailgate.proxy import resolver

from tests.fuzz.common import WIDE, steps

_PTR_NAME = dns.name.from_text("1.0.0.127.in-addr.arpa.")
_NAME = dns.name.from_text("client.test.")
_A, _AAAA = dns.rdatatype.A, dns.rdatatype.AAAA
_KINDS = ("ok", "error", "cname", "stall")

DICTIONARY = (
    b"\x81\x80", b"\x81\x83", b"\x83\x80", b"\x00\x01\x00\x01", b"\x00\x01\x00\x00",
    b"\x00\x0c\x00\x01", b"\x00\x1c\x00\x01", b"\x00\x05\x00\x01", b"\xc0\x0c",
    b"\x06client\x04test\x00", b"\x011\x010\x010\x03127\x07in-addr\x04arpa\x00",
    b"\x00\x00\x0e\x10", b"\x00\x04\x7f\x00\x00\x01", b"\x00\x10",
)


@functools.cache
def _query(qname: dns.name.Name, qtype: int) -> dns.message.Message:
    # made once: only its ID changes per datagram
    return dns.message.make_query(qname, qtype, use_edns=False)


def _answer(data: bytes, qname: dns.name.Name, qtype: int, tcp: bool):
    """The resolver's reading of one datagram for the query, or None if ignored."""
    query = _query(qname, qtype)
    query.id = int.from_bytes(data[:2], "big")
    try:
        response = dns.message.from_wire(data, one_rr_per_rrset=True)
    except Exception:  # noqa: BLE001 - the resolver ignores any datagram dnspython refuses
        return None
    if not query.is_response(response) or not resolver._acceptable(response, tcp):
        return None
    if qtype == dns.rdatatype.PTR:
        answer = resolver._read_ptr(response)
    else:
        answer = resolver._read_addresses(response, qtype)
    if answer is not None:
        assert isinstance(answer.code, int) and answer.count >= 0 and answer.ttl >= 0
        assert all(isinstance(a, (ipaddress.IPv4Address, ipaddress.IPv6Address))
                   for a in answer.addresses)
        assert answer.cname is None or isinstance(answer.cname, bytes)
        assert answer.name is None or isinstance(answer.name, bytes)
    return answer


def _next_query(name: bytes) -> None:
    """The query name ``_query_name`` makes of a PTR name or CNAME target (None: NXDOMAIN)."""
    qname = resolver._query_name(name)
    assert qname is None or isinstance(qname, dns.name.Name)


def one_input(data: bytes) -> None:
    """Answer one client-name lookup with the datagrams of ``data``."""
    if not data:
        return
    ptr, tcp = bool(data[0] & 1), bool(data[0] & 2)
    combined = resolver._Combined({_A, _AAAA})
    for op, datagram in steps(data, 1, WIDE):
        if ptr:
            answer = _answer(datagram, _PTR_NAME, dns.rdatatype.PTR, tcp)
            if answer is not None:
                # resolve(): only a name of letters, digits, dots and dashes is looked up
                if answer.code == 0 and resolver._VALID_NAME.match(answer.name):
                    answer.name.decode("ascii")
                    _next_query(answer.name)
                return
            continue
        qtype = _A if op & 1 else _AAAA
        if qtype not in combined.pending:
            continue  # that query was answered already: its exchange is over
        answer = _answer(datagram, _NAME, qtype, tcp)
        if answer is None:
            continue
        result = combined.feed(qtype, answer)
        if result is not None:
            kind, value = result
            assert kind in _KINDS, result
            if kind == "cname":
                assert isinstance(value, bytes)
                _next_query(value)
            return
