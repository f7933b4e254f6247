"""Conformance: the SMTP client name lookup of Debian's nginx and of mailgate, same DNS.

nginx runs with ``resolver`` pointing at the scripted DNS server; an SMTP client logs
in so that nginx sends the ``Client-Host`` it found to a small auth_http server.  Each
scenario uses its own client address (127.0.0.N) so that nginx's resolver cache stays
out of the way.  mailgate's :class:`ClientNameResolver` must give the same host and the
same error-log lines (message and action).
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket

import dns.flags
import pytest

from mailgate.config.model import Resolver
from mailgate.proxy.resolver import ClientNameResolver
from tests.support.components import NGINX_MAIL_MODULE
from tests.support.dns_server import DNSServer, reverse_name

pytestmark = [pytest.mark.nginx, pytest.mark.requires("nginx")]


def _a(name, *addresses, **kw):
    return ("records", name, "A", addresses, kw)


def _aaaa(name, *addresses, **kw):
    return ("records", name, "AAAA", addresses, kw)


def _rule(name, rdtype, **kw):
    return ("rule", name, rdtype, (), kw)


def _ptr(target, **kw):
    return ("ptr", target, "PTR", (), kw)


SCENARIOS = {
    "match": [_ptr("m1.example."), _a("m1.example", "{client}"), _rule("m1.example", "AAAA")],
    "upper case": [_ptr("M2.Example."), _a("m2.example", "{client}"), _aaaa("m2.example")],
    "ptr nxdomain": [_rule("{ptr}", "PTR", rcode=3)],
    "ptr servfail": [_rule("{ptr}", "PTR", rcode=2)],
    "ptr refused": [_rule("{ptr}", "PTR", rcode=5)],
    "ptr empty": [_rule("{ptr}", "PTR")],
    "invalid name": [_ptr("bad_name.example.")],
    "forward nxdomain": [_ptr("m3.example."), _rule("m3.example", "A", rcode=3),
                         _rule("m3.example", "AAAA", rcode=3)],
    "no match": [_ptr("m4.example."), _a("m4.example", "10.0.0.1"), _aaaa("m4.example", "::1")],
    "a fails, aaaa later": [_ptr("m5.example."), _rule("m5.example", "A", rcode=2),
                            _aaaa("m5.example", "::1", delay=0.2)],
    "aaaa fails later": [_ptr("m6.example."), _a("m6.example", "{client}"),
                         _rule("m6.example", "AAAA", rcode=5, delay=0.2)],
    "no addresses": [_ptr("m7.example."), _rule("m7.example", "A"),
                     _rule("m7.example", "AAAA")],
    "cname": [_ptr("m8.example."), ("records", "m8.example", "CNAME", ("r8.example.",), {}),
              _a("r8.example", "{client}"), _rule("r8.example", "AAAA")],
    "ad flag ignored": [_ptr("m9.example.", flags=dns.flags.AD)],
    "formerr ignored": [_rule("{ptr}", "PTR", rcode=1)],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _script(server: DNSServer, client: str, steps) -> None:
    for kind, name, rdtype, values, kw in steps:
        name = name.replace("{ptr}", reverse_name(client))
        values = [v.replace("{client}", client) for v in values]
        if kind == "ptr":
            server.ptr(client, name, **kw)
        elif kind == "records":
            server.records(name, rdtype, *values, **kw)
        else:
            server.rule(name, rdtype, **kw)


async def _auth_server(seen: list):
    async def handle(reader, writer):
        request = await reader.readuntil(b"\r\n\r\n")
        seen.append(request.decode("latin-1"))
        writer.write(b"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login\r\nAuth-Wait: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _nginx_host(port: int, client: str, seen: list) -> str | None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(client, 0))
    try:
        await asyncio.wait_for(reader.readline(), 10)  # the greeting, after the lookup
        plain = base64.b64encode(b"\0user\0pass")
        writer.write(b"EHLO client.example\r\nAUTH PLAIN " + plain + b"\r\n")
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line or line[:1] in (b"4", b"5"):  # the auth answer (535) ends it
                break
    finally:
        writer.close()
    for request in seen:
        if "Client-IP: %s\r\n" % client in request:
            match = re.search(r"Client-Host: (.*)\r\n", request)
            return match.group(1) if match else None
    return None


def _nginx_lines(log: str, client: str) -> list[tuple[str, str]]:
    lines = []
    for line in log.splitlines():
        match = re.match(r".* \[error\] \d+#\d+: \*\d+ (.*) while (in resolving client \w+), "
                         r"client: ([^,]+),", line)
        if match and match.group(3) == client:
            lines.append((match.group(1), match.group(2)))
    return lines


def test_client_host_and_log_lines_match_nginx(tmp_path):
    async def main():
        dns_server = await DNSServer().start()
        seen: list = []
        auth = await _auth_server(seen)
        auth_port = auth.sockets[0].getsockname()[1]
        port = _free_port()
        (tmp_path / "logs").mkdir()
        (tmp_path / "nginx.conf").write_text(
            "daemon off; master_process off; pid nginx.pid;\n"
            "error_log logs/error.log info;\nevents {}\n"
            f"mail {{\n  auth_http 127.0.0.1:{auth_port}/auth;\n"
            f"  resolver 127.0.0.1:{dns_server.address[1]}; resolver_timeout 1s;\n"
            f"  server {{ listen 127.0.0.1:{port}; protocol smtp; smtp_auth plain; }}\n}}\n")
        nginx = await asyncio.create_subprocess_exec(
            "nginx", "-p", f"{tmp_path}/", "-c", "nginx.conf",
            "-g", f"load_module {NGINX_MAIL_MODULE};",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", port)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            results = {}
            for n, (title, steps) in enumerate(SCENARIOS.items(), start=10):
                client = "127.0.0.%d" % n
                _script(dns_server, client, steps)
                host = await _nginx_host(port, client, seen)
                resolver = ClientNameResolver(Resolver((dns_server.address,)), 1.0)
                ours = await resolver.resolve(client)
                results[title] = (client, host, ours)
            await asyncio.sleep(0.2)
        finally:
            nginx.terminate()
            await nginx.wait()
            auth.close()
            await dns_server.close()
        return results

    results = asyncio.run(asyncio.wait_for(main(), 120))
    log = (tmp_path / "logs" / "error.log").read_text("latin-1")
    for title, (client, host, ours) in results.items():
        assert ours.host == host, title
        assert [(line.message, line.action) for line in ours.logs] == _nginx_lines(log, client), \
            title
