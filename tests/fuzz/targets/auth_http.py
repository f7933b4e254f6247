"""Target ``auth_http``: the auth_http answer, read as nginx reads it, and the decision on it.

The answer comes from the auth service over the network; mailgate reads it with its
``asyncio.BufferedProtocol`` (``auth/http.py``'s ``_Connection``: each read goes into a
4096-byte view, ``parse_response`` looks at everything so far and the first complete
header block or refusal ends the exchange; with keep-alive the end of the answer is
found and what follows read away or refused) and ``decide`` turns the headers into the
machine's auth result.  Both the connection of nginx's wire and a kept-alive one read
every input.

Input: steps (:mod:`tests.fuzz.common`, ``WIDE`` sizes, so a read may fill the whole
view): operation 7 is the end of the connection, any other a read of the chunk.

Contract: the exchange ends in an ``AuthResponse``, an ``AuthHttpError`` (nginx's
``invalid response`` / ``invalid header in response``) or nothing at the end of input,
and never raises; reading the same bytes in one piece ends the same way, however they
were cut; ``decide`` returns ``AuthOK`` (an IP literal and a port 1-65535),
``AuthFailed``, ``AuthRetry`` or ``AuthInternalError`` and logs only error lines.
"""

from __future__ import annotations

import asyncio
import socket

from mailgate.auth.http import (
    RESPONSE_LIMIT,
    AuthHttpClient,
    AuthHttpError,
    AuthResponse,
    _Connection,
    decide,
    parse_response,
)
from mailgate.config import AuthHttpTarget
from mailgate.inet import peer_ip
from mailgate.protocol import AuthFailed, AuthInternalError, AuthOK, AuthRetry

from tests.fuzz.common import WIDE, steps

MAX_LEN = 16384
PEER = "127.0.0.1:9000"
# futures need a loop object, never a running one: no callback is ever scheduled
_LOOP = asyncio.new_event_loop()

DICTIONARY = (
    b"HTTP/1.0 200 OK\r\n", b"HTTP/1.1 ", b"Auth-Status: ", b"Auth-Server: ", b"Auth-Port: ",
    b"Auth-User: ", b"Auth-Pass: ", b"Auth-Wait: ", b"Auth-Error-Code: ", b"OK", b"WAIT",
    b"127.0.0.1", b"::1", b"143", b"65536", b"\r\n", b"\r\n\r\n", b"\n\n", b"\t", b":",
    b"Content-Length: 0", b"Transfer-Encoding: chunked", b"_", b"Connection: close",
    b"Auth-SSL-Backend: ", b"starttls",
)
TARGET = AuthHttpTarget("http://127.0.0.1:9000/", socket.AF_INET, "127.0.0.1", 9000, "/",
                        "127.0.0.1", PEER)


def _exchange(data: bytes, keepalive: int):
    """Feed the connection protocol as an event loop would; its result and the bytes read
    until it came (with keep-alive, what follows goes on being read)."""
    protocol = _Connection(AuthHttpClient(TARGET, keepalive=keepalive), _LOOP)
    done = protocol.done = _LOOP.create_future()
    read = bytearray()
    answered = None
    for op, chunk in steps(data, 0, WIDE):
        if op == 7:
            break
        view = protocol.get_buffer(-1)
        n = min(len(view), len(chunk))
        view[:n] = chunk[:n]
        protocol.buffer_updated(n)
        if answered is None:
            read += chunk[:n]
            if done.done():
                answered = done.result(), bytes(read)
                if not keepalive:
                    return answered
    assert protocol.eof_received() is False
    return answered or (done.result(), bytes(read))


def _same(a, b) -> bool:
    if isinstance(a, AuthHttpError):
        return isinstance(b, AuthHttpError) and str(a) == str(b)
    return a == b


def one_input(data: bytes) -> None:
    """Read ``data`` as the auth service's answer and decide on it."""
    result, read = _exchange(data, 0)
    assert _same(_exchange(data, 1)[0], result)
    assert result is None or isinstance(result, (AuthResponse, AuthHttpError)), result
    if len(read) <= RESPONSE_LIMIT:
        try:
            whole = parse_response(read)
        except AuthHttpError as exc:
            whole = exc
        assert _same(result, whole), (result, whole)
    if not isinstance(result, AuthResponse):
        return
    lines = []
    outcome = decide(result, PEER, lambda level, message: lines.append((level, message)))
    assert all(level == "error" and isinstance(message, str) for level, message in lines)
    if isinstance(outcome, AuthOK):
        assert peer_ip(outcome.server) is not None and 1 <= outcome.port <= 65535
        assert isinstance(outcome.upstream, str) and not lines
    else:
        assert isinstance(outcome, (AuthFailed, AuthRetry, AuthInternalError)), outcome
