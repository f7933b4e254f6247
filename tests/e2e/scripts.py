"""Client scripts and the replies nginx gives, shared by the scenarios."""

from __future__ import annotations

import base64
import re
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.backends import V2_SIGNATURE
from tests.support.auth_http import Reply
from tests.support.transcript import ReadEOF, ReadLine, ReadUntil

__all__ = [
    "EHLO_DONE",
    "INTERNAL_ERROR",
    "PROTOCOLS",
    "context",
    "each_protocol",
    "login_script",
    "ok",
    "per_protocol",
    "proxy_v2",
    "rejection",
]

PROTOCOLS = ("imap", "pop3", "smtp")

EHLO_DONE = ReadUntil(re.compile(rb"(?:^|\n)250 [^\n]*\n"))
"""The end of a (multi-line) EHLO reply."""

INTERNAL_ERROR = {
    "imap": b"* BAD internal server error\r\n",
    "pop3": b"-ERR internal server error\r\n",
    "smtp": b"451 4.3.2 Internal server error\r\n",
}
"""What the client gets before the close when nginx cannot go on: the internal error
line of each protocol's ngx_mail_protocol_t (docs/nginx-behaviour.md#session-phases)."""


def plain_ir(login: bytes, password: bytes) -> bytes:
    """The SASL PLAIN initial response (no authzid)."""
    return base64.b64encode(b"\0" + login + b"\0" + password)


def login_script(protocol: str, login: bytes = b"alice", password: bytes = b"alice-secret",
                 *, then=None) -> list:
    """Greeting, credentials (IMAP LOGIN a1, POP3 USER/PASS, SMTP EHLO + AUTH PLAIN),
    then ``then`` (default: read until the server closes)."""
    then = [ReadEOF()] if then is None else list(then)
    if protocol == "imap":
        return [ReadLine(), b"a1 LOGIN \"%s\" \"%s\"\r\n" % (login, password), *then]
    if protocol == "pop3":
        return [ReadLine(), b"USER %s\r\n" % login, ReadLine(), b"PASS %s\r\n" % password, *then]
    return [ReadLine(), b"EHLO client.test\r\n", EHLO_DONE,
            b"AUTH PLAIN %s\r\n" % plain_ir(login, password), *then]


def rejection(protocol: str, text: bytes, smtp_code: bytes = b"535 5.7.0") -> bytes:
    """The line for an auth_http failure ``text`` (ngx_mail_auth_http_process_headers())
    after ``login_script``."""
    prefix = {"imap": b"a1 NO ", "pop3": b"-ERR ", "smtp": smtp_code + b" "}[protocol]
    return prefix + text + b"\r\n"


def context(gate, port_name: str, login: str | None = "alice", upstream: str | None = None,
            starttls: bool = False) -> str:
    """nginx's log context for a session of ``gate``'s ``port_name`` listener."""
    tls = " using starttls" if starttls else ""
    text = f", client: 127.0.0.1{tls}, server: 127.0.0.1:{gate.port(port_name)}"
    if login is not None:
        text += f', login: "{login}"'
    if upstream is not None:
        text += f", upstream: {upstream}"
    return text


def each_protocol(run, protocols=PROTOCOLS) -> dict:
    """``run(protocol)`` for every protocol at the same time (the scenarios that wait
    for a timer wait once); results by protocol, the first failure re-raised."""
    with ThreadPoolExecutor(len(protocols)) as pool:
        futures = {p: pool.submit(run, p) for p in protocols}
        return {p: f.result() for p, f in futures.items()}


def per_protocol(*answers, then):
    """An auth policy answering each protocol's requests with ``answers`` in turn,
    then with ``then`` (a policy): scripted answers for concurrent sessions."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def policy(request):
        with lock:
            n = seen[request.protocol] = seen.get(request.protocol, 0) + 1
        return answers[n - 1] if n <= len(answers) else then(request)

    return policy


def proxy_v2(source: str, destination: str, source_port: int, destination_port: int,
             *, command: int = 0x21, tlvs: bytes = b"") -> bytes:
    """A binary PROXY protocol v2 header (command 0x21 PROXY, 0x20 LOCAL) for TCP over
    IPv4 or IPv6, optionally with TLVs."""
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    addresses = (socket.inet_pton(family, source) + socket.inet_pton(family, destination)
                 + struct.pack("!HH", source_port, destination_port))
    kind = 0x21 if family == socket.AF_INET6 else 0x11
    body = addresses + tlvs
    return V2_SIGNATURE + bytes([command, kind]) + struct.pack("!H", len(body)) + body


def ok(backend: tuple[str, int], **headers: str) -> Reply:
    """An auth_http answer sending the session to ``backend``; ``headers`` are added
    (``Auth_Pass="x"`` → ``Auth-Pass: x``)."""
    return Reply([("Auth-Status", "OK"), ("Auth-Server", backend[0]), ("Auth-Port", backend[1]),
                  *((name.replace("_", "-"), value) for name, value in headers.items())])
