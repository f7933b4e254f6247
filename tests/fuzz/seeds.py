"""The seed corpus: realistic inputs for each target, written to ``corpus/TARGET/``.

    python -m tests.fuzz.seeds [TARGET ...]     # rewrite the seed files (of every target)

Each seed is a named, readable session in the target's input format: client commands
with literals and SASL exchanges, backend replies, PROXY headers, auth_http answers,
DNS answers made with dnspython, configuration snippets, and TLS ClientHellos and
client flights captured from Python's ssl module over memory BIOs.  The TLS captures
carry fresh randoms and keys, so rewriting changes those files; the others come out
the same.  Run it when an input format changes, and commit the result.
"""

from __future__ import annotations

import base64
import shutil
import ssl
import sys
from collections.abc import Iterator

from tests.fuzz import CORPUS, TARGETS
from tests.fuzz.common import WIDE, encode
from tests.fuzz.targets import machines as machines_target

CR = b"\r\n"


def _machine_selector(buffer: int = 2, starttls: int = 0, *, max_errors: int = 3,
                      delay: bool = False, passthrough: bool = False) -> int:
    """A ``machines`` configuration byte (see ``machines._config``); proxy_buffer 4096."""
    return (buffer | starttls << 2 | 1 << 4 | delay << 5 | passthrough << 6
            | (max_errors == 1) << 7)


def machines() -> Iterator[tuple[str, bytes]]:
    """Whole sessions: commands, auth results (operation = result kind), backend replies."""
    data, proxy = 2, 2  # operations: data through receive_data(); any step starts the backend
    imap, pop3, smtp = 0, 1, 2

    def session(name, mode, selector, items):
        return name, bytes([selector, mode]) + encode(items)

    plain = _machine_selector()
    yield session("imap-login-literals", imap, plain, [
        (data, b"a1 CAPABILITY\r\n"), (data, b"a2 LOGIN {4}\r\n"), (data, b"user {4}\r\n"),
        (data, b"pass\r\n"), (0, b""), (proxy, b""), (data, b"* OK IMAP4rev1 ready\r\n"),
        (data, b"+ go ahead\r\n"), (data, b"+ go ahead\r\n"), (data, b"a2 OK LOGIN done\r\n")])
    yield session("imap-quoted-escapes-nosync", imap, plain, [
        (data, b'a1 LOGIN "us\\"er" "pa\\\\ss"\r\n'), (3, b"failed"), (0, b""),
        (data, b"b1 LOGIN {4+}\r\nuser {4+}\r\npass\r\n"), (7, b"")])
    yield session("imap-authenticate-plain", imap, plain, [
        (data, b"a1 AUTHENTICATE PLAIN\r\n"), (data, b"AHVzZXIAcGFzcw==\r\n"), (5, b""),
        (6, b""), (0, b""), (0, b""), (proxy, b""), (data, b"* OK\r\n"), (data, b"+ \r\n"),
        (data, b"+ \r\n"), (data, b"* CAPABILITY IMAP4rev1\r\na1 NO [AUTHENTICATIONFAILED]\r\n")])
    yield session("imap-authenticate-login-cram", imap, plain, [
        (data, b"a1 AUTHENTICATE LOGIN\r\n"), (data, b"dXNlcg==\r\n"), (data, b"*\r\n"),
        (data, b"a2 AUTHENTICATE CRAM-MD5\r\n"),
        (data, b"dXNlciAwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg==\r\n"), (7, b"")])
    yield session("imap-starttls", imap, _machine_selector(starttls=1), [
        (data, b"a1 CAPABILITY\r\na2 STARTTLS\r\na3 NOOP\r\n"), (1, b""),
        (data, b"a4 LOGIN user pass\r\n"), (2, b"")])
    yield session("imap-starttls-only-small-buffer", imap, _machine_selector(0, 2, max_errors=1), [
        (data, b"a1 LOGIN user pass\r\n"), (data, b"a2 NOOP\r\n"), (data, b"x" * 30)])
    yield session("imap-secret-pipelined", imap, plain, [
        (7, bytes([4, 9])), (3, b"denied"), (data, b"a9 LOGOUT\r\n"), (0, b"")])
    yield session("imap-greeted-implicit-tls", imap | 4 | 8, plain, [
        (1, b"a1 NOOP\r\n"), (data, b"a2 LOGOUT\r\n")])
    yield session("pop3-user-pass", pop3, plain, [
        (data, b"CAPA\r\n"), (data, b"USER user\r\n"), (data, b"PASS secret pass\r\n"),
        (0, b""), (proxy, b""), (data, b"+OK POP3 ready\r\n"), (data, b"+OK\r\n"),
        (data, b"+OK logged in\r\n")])
    yield session("pop3-apop-auth", pop3, plain, [
        (data, b"APOP user 0123456789abcdef0123456789abcdef\r\n"), (4, b"no"),
        (data, b"AUTH\r\nAUTH PLAIN AHVzZXIAcGFzcw==\r\n"), (2, b""), (proxy, b""),
        (data, b"-ERR no\r\n")])
    yield session("pop3-stls-sasl", pop3, _machine_selector(starttls=1), [
        (data, b"STLS\r\n"), (1, b""), (data, b"AUTH LOGIN\r\n"), (data, b"dXNlcg==\r\n"),
        (data, b"cGFzcw==\r\n"), (7, b"")])
    yield session("smtp-ehlo-auth-login", smtp, plain, [
        (data, b"EHLO client.test\r\n"), (data, b"AUTH LOGIN dXNlcg==\r\n"),
        (data, b"cGFzcw==\r\n"), (0, b""), (proxy, b""), (data, b"220 backend ESMTP\r\n"),
        (data, b"250-backend\r\n250-XCLIENT ADDR LOGIN NAME\r\n250 AUTH PLAIN\r\n"),
        (data, b"220 backend ESMTP\r\n"), (data, b"250 backend\r\n")])
    yield session("smtp-none-mail-rcpt", smtp, plain, [
        (data, b"HELO client.test\r\nMAIL FROM:<a@b.test> SIZE=10\r\n"),
        (data, b"RCPT TO:<c@d.test>\r\n"), (0, b""), (proxy, b""), (data, b"220 x\r\n"),
        (data, b"250 x\r\n"), (data, b"220 x\r\n"), (data, b"250 x\r\n"),
        (data, b"250 2.1.0 Ok\r\n"), (data, b"250 2.1.5 Ok\r\n")])
    yield session("smtp-greeting-delay-early", smtp, _machine_selector(delay=True), [
        (data, b"EHLO early\r\n"), (0, b"")])
    yield session("smtp-starttls-pipelined", smtp, _machine_selector(starttls=1), [
        (data, b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<a>\r\n"), (1, b""), (data, b"EHLO x\r\n"),
        (7, bytes([0, 5])), (6, b"")])
    for i, unit in enumerate(machines_target.SECRET_UNITS[2]):
        yield session(f"smtp-secret-{i}", smtp, plain, [(7, bytes([i])), (3, b"")])
    no_none = 2 << 6  # METHODS[2]: MAIL without AUTH is refused and logged
    yield session("smtp-secret-pipelined-mail", smtp | no_none, plain, [
        (7, bytes([2, 0]) + b"MAIL FROM:<a@b.test>\r\n"), (3, b"denied"), (0, b"")])
    yield session("imap-cram-md5-only", imap | 3 << 6, plain, [
        (data, b"a1 LOGIN user pass\r\na2 AUTHENTICATE CRAM-MD5\r\n"),
        (data, b"dXNlciAwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg==\r\n"), (1, b"")])


def readers() -> Iterator[tuple[str, bytes]]:
    """Command streams for each reader, written in pieces."""
    def stream(name, kind, capacity, pieces):
        head = kind | capacity << 2
        return name, bytes([head]) + encode([(4, p) for p in pieces])

    yield stream("imap-literals", 0, 7, [
        b"a1 LOGIN {4}\r\n", b"user {5}\r\n", b"pa", b"ss\r\n\r\n", b"a2 LOGIN {2+}\r\nab ",
        b"{0}\r\n\r\n"])
    yield stream("imap-quoted", 0, 7, [b'a1 LOGIN "a\\"b" "c\\\\d"\r\n', b'a2 NOOP "x\r\n'])
    yield stream("imap-authenticate", 0, 5, [
        b"a1 AUTHENTICATE PLAIN\r\n", b"AHVzZXIAcGFzcw==\r\n", b"* NOOP\r\n", b"a.b-c_d CAPABILITY\n"])
    yield stream("imap-bad-literal", 0, 3, [b"a1 LOGIN {99999999999999999999}\r\n", b"a2 x {1+}\r\n"])
    yield stream("pop3", 1, 4, [b"USER us er\r\n", b"PASS p a s s\r\n", b"AUTH PLAIN\r\n",
                                b"AHVzZXIAcGFzcw==\r\n", b"QUIT\n", b"BOGUS\r\n"])
    yield stream("smtp", 2, 7, [b"EHLO x\r\n", b"MAIL FROM:<a> BODY=8BITMIME SIZE=1\r\n",
                                b"RCPT TO:<b> a b c d e f g h i j k\r\n", b"STARTTLS\r\n"])


def backend_login() -> Iterator[tuple[str, bytes]]:
    """Backend dialogues for each protocol (byte 0: protocol and options; byte 1: login)."""
    def dialogue(name, selector, variant, replies):
        return name, bytes([selector, variant]) + encode([(2, r) for r in replies])

    yield dialogue("imap-ok", 0, 0, [b"* OK IMAP4rev1\r\n", b"+ go\r\n", b"+ go\r\n",
                                     b"* CAPABILITY IMAP4rev1\r\na1 OK done\r\n"])
    yield dialogue("imap-no-passthrough", 8, 0, [b"* OK\r\n", b"+ \r\n", b"+ \r\n",
                                                 b"a1 NO [AUTHENTICATIONFAILED] Zq7Secret\r\n"])
    yield dialogue("pop3-ok", 1, 2, [b"+OK ready\r\n", b"+OK\r\n", b"+OK logged in\r\n"])
    yield dialogue("pop3-err-echo", 1 | 8, 0, [b"+OK\r\n", b"+OK\r\n", b"-ERR bad Zq7Secret\r\n"])
    yield dialogue("smtp-xclient-auth", 2 | 16 | 32 | 64, 0, [
        b"220 backend ESMTP\r\n", b"250-backend\r\n250-XCLIENT ADDR NAME\r\n250 OK\r\n",
        b"220 backend ESMTP\r\n", b"235 2.7.0 OK\r\n"])
    yield dialogue("smtp-none-from-rcpt", 2 | 128, 8, [
        b"220 x\r\n", b"250 x\r\n", b"250 2.1.0 Ok\r\n", b"554 5.7.1 Relay denied\r\n"])
    yield dialogue("smtp-too-long", 2 | 4, 0, [b"220-" + b"x" * 40 + b"\r\n"])
    # variant bits 3-4: XOAUTH2 (8) or OAUTHBEARER (16) replayed
    yield dialogue("imap-xoauth2-ok", 0, 8, [b"* OK\r\n", b"+ \r\n",
                                             b"a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n"])
    yield dialogue("pop3-oauthbearer-error", 1 | 8, 16, [
        b"+OK\r\n", b"+ \r\n", b"+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n",
        b"-ERR [AUTH] Authentication failed.\r\n"])


def sasl() -> Iterator[tuple[str, bytes]]:
    """Client responses and AUTH argument lists."""
    yield from [("plain", b"AHVzZXIAcGFzcw=="), ("plain-authzid", b"YWRtaW4AdXNlcgBwYXNz"),
                ("login", b"dXNlcg"), ("cram", b"dXNlciAwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg=="),
                ("cancel", b"*"), ("empty", b"="), ("args", b"PLAIN AHVzZXIAcGFzcw=="),
                ("args-external", b"EXTERNAL ="), ("bad-length", b"QUJDRA" + b"A"),
                ("xoauth2", b"user=alice@mx.test\x01auth=Bearer ya29.a0Af-H_x\x01\x01"),
                ("oauthbearer", b"n,a=alice=2Cx,\x01host=mx.test\x01port=993\x01"
                                b"auth=Bearer eyJ0.eyJz.c2ln==\x01\x01"),
                ("xoauth2-base64", base64.b64encode(
                    b"user=alice\x01auth=Bearer t0k3n\x01\x01")),
                ("args-oauthbearer", b"OAUTHBEARER bix,AWF1dGg9QmVhcmVyIHQBAQ==")]


def imap_id() -> Iterator[tuple[str, bytes]]:
    """Clients' ID parameter lists (RFC 2971 section 3.3 and what mail clients send)."""
    yield from [
        ("nil", b"NIL"), ("empty", b"()"),
        ("thunderbird", b'("name" "Thunderbird" "version" "115.3.1")'),
        ("rfc-example", b'("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")'),
        ("nil-value", b'("name" "x" "os" NIL)'), ("escapes", b'("a\\"b" "c\\\\d")'),
        ("spoofed", b'("x-originating-ip" "10.6.6.6" "x-forward-user" "root")'),
        ("literal", b'("name" {5}'),
    ]


def auth_http() -> Iterator[tuple[str, bytes]]:
    """Answers of auth services, whole and cut in pieces."""
    answers = {
        "ok": b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\n"
              b"Auth-Port: 143\r\nAuth-Pass: secret\r\n\r\n",
        "ok-overrides": b"HTTP/1.1 200 OK\r\nauth-status: OK\r\nAuth-Server: ::1\r\n"
                        b"Auth-Port: 110\r\nAuth-User: other\r\nAuth-Pass: p%20w\r\n\r\n",
        "fail-wait": b"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\n"
                     b"Auth-Wait: 3\r\nAuth-Error-Code: 535 5.7.8\r\n\r\n",
        "wait": b"Auth-Status: WAIT\nAuth-Wait: 1\n\n",
        "no-status-line": b"Auth-Server: 127.0.0.1\r\nAuth-Port: 25\r\nX-Other\r\n\r\nbody",
        "bad-name": b"HTTP/1.0 200 OK\r\nAuth_Status: OK\r\n\r\n",
        "bad-port": b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 10.0.0.1\r\n"
                    b"Auth-Port: 65536\r\n\r\n",
        "tab-and-spaces": b"HTTP/1.0 200 OK\r\nAuth-Status:  \tOK \r\nContent-Length: 5\r\n\r\n",
    }
    for name, answer in answers.items():
        yield name, encode([(0, answer)], WIDE)
    yield "ok-in-pieces", encode([(0, answers["ok"][i:i + 7])
                                  for i in range(0, len(answers["ok"]), 7)], WIDE)
    yield "closed-early", encode([(0, answers["fail-wait"][:40]), (7, b"")], WIDE)


def proxy_protocol() -> Iterator[tuple[str, bytes]]:
    """PROXY v1 and v2 headers, with the client's first command behind them."""
    from mailgate.proxy.proxy_protocol import TLSFacts, build_v1, build_v2

    after = b"a1 CAPABILITY\r\n"
    yield "v1-tcp4", b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 30114\r\n" + after
    yield "v1-tcp6", b"PROXY TCP6 2001:db8::7 ::1 1 2\r\n" + after
    yield "v1-unknown", b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n" + after
    yield "v1-nginx-text", b"PROXY TCP4 0192.0.2.7 FE80::A 00080 0443\r\n"
    yield "v1-broken", b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 1\r\n"
    yield "v2-tcp4", build_v2(("192.0.2.7", 40000), ("127.0.0.1", 993)) + after
    yield "v2-tcp6-tls", build_v2(("2001:db8::7", 1), ("::1", 2), TLSFacts(
        sni="mail.test", alpn=b"imap", version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384",
        cn="client one", has_cert=True, sig_alg="ecdsa-with-SHA256", key_alg="EC256"))
    yield "v2-mapped", build_v2(("::ffff:192.0.2.7", 5), ("::ffff:127.0.0.1", 6))
    yield "v2-local", build_v2("/run/x.sock", "/run/y.sock")
    yield "v2-too-short", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04\x7f\x00\x00\x01"
    yield "v1-built", build_v1(("::ffff:1.2.3.4", 1), ("127.0.0.1", 2))


def dns_answer() -> Iterator[tuple[str, bytes]]:
    """Answers to the PTR, A and AAAA queries of a client-name lookup."""
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rrset

    def answer(qname, qtype, records=(), rcode=0, flags=0):
        query = dns.message.make_query(qname, qtype, use_edns=False)
        response = dns.message.make_response(query)
        response.set_rcode(rcode)
        response.flags |= flags
        for record in records:
            response.answer.append(dns.rrset.from_text(*record))
        return response.to_wire()

    reverse = "1.0.0.127.in-addr.arpa."
    name = "client.test."
    ptr = answer(reverse, "PTR", [(reverse, 300, "IN", "PTR", "client.test.")])
    yield "ptr", bytes([1]) + encode([(0, ptr)], WIDE)
    yield "ptr-nxdomain", bytes([1]) + encode([(0, answer(reverse, "PTR", rcode=3))], WIDE)
    yield "ptr-bad-name", bytes([1]) + encode([(0, answer(
        reverse, "PTR", [(reverse, 300, "IN", "PTR", "bad_name\\032x.")]))], WIDE)
    a = answer(name, "A", [(name, 300, "IN", "A", "127.0.0.1")])
    aaaa = answer(name, "AAAA", [(name, 60, "IN", "AAAA", "::1")])
    yield "a-aaaa", bytes([0]) + encode([(1, a), (0, aaaa)], WIDE)
    yield "cname", bytes([0]) + encode([(1, answer(name, "A", [
        (name, 300, "IN", "CNAME", "other.test.")])), (0, answer(name, "AAAA"))], WIDE)
    yield "truncated-tcp", bytes([2]) + encode([(1, answer(name, "A", flags=dns.flags.TC)),
                                                (0, answer(name, "AAAA", rcode=2))], WIDE)


def config() -> Iterator[tuple[str, bytes]]:
    """Configurations in the style of the documentation and the tests."""
    snippets = {
        "imap": """mail {
    server_name mx.test;
    auth_http 127.0.0.1:9000/auth;
    imap_capabilities IMAP4rev1 "SASL-IR" IDLE;
    server {
        listen 127.0.0.1:143;
        listen [::1]:993 ssl;
        protocol imap;
        starttls on;
        ssl_certificate server.crt;
        ssl_certificate_key server.key;
        ssl_session_cache shared:SSL:1m;
        ssl_session_ticket_key ticket.key;
        ssl_password_file keys.pass;
    }
}
""",
        "smtp-none-resolver": """worker_processes auto;
events { worker_connections 1024; }
mail {
    auth_http unix:/run/auth.sock:/auth;
    resolver 127.0.0.1:5353 valid=30s ipv6=off;
    resolver_timeout 5s;
    server {
        listen *:25 proxy_protocol;
        protocol smtp;
        smtp_auth none plain cram-md5;
        smtp_greeting_delay 100ms;
        xclient off;
        set_real_ip_from 10.0.0.0/8;
        set_real_ip_from unix:;
        timeout "1h 30m";
    }
}
""",
        "pop3-include": """include include.conf;
mail {
    auth_http localhost:9000/;
    auth_http_header X-Auth-Key "secret\\"value";
    pop3_auth plain apop;
    include servers.conf;
    server { listen 127.0.0.1:110; protocol pop3; proxy_pass_error_message on; }
}
""",
        "tls-contexts": """mail {
    auth_http 127.0.0.1:9000/auth;
    ssl_session_cache shared:TLS:1m;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        listen 127.0.0.1:993 ssl;
        protocol imap;
        ssl_certificate pki/ecdsa.pem;
        ssl_certificate_key pki/ecdsa.key;
        ssl_certificate pki/rsa.pem;
        ssl_certificate_key pki/rsa-enc.key;
        ssl_password_file keys.pass;
        ssl_ciphers HIGH:!aNULL:!MD5;
        ssl_ecdh_curve X25519:prime256v1;
        ssl_conf_command Options PrioritizeChaCha;
        ssl_session_ticket_key ticket.key;
    }
    server {
        listen 127.0.0.1:587;
        protocol smtp;
        starttls only;
        ssl_certificate pki/ecdsa.pem;
        ssl_certificate_key pki/ecdsa.key;
        ssl_verify_client optional_no_ca;
        ssl_client_certificate pki/client-ca.pem;
        ssl_crl pki/client-crl.pem;
        ssl_session_tickets off;
    }
}
""",
        "errors": "mail { server { listen 127.0.0.1:70000; } }",
        "lexer": "# comment\n'quoted \\' word' \"x\"y; ${var} {",
    }
    for name, text in snippets.items():
        yield name, bytes([2]) + text.encode()
    yield "command-line", bytes([1]) + b"user nobody; pid /tmp/x.pid; daemon off"


def tls() -> Iterator[tuple[str, bytes]]:
    """Client flights captured from Python's ssl module, raw or after a handshake."""
    from mailgate.tls import TLSStream

    from tests.fuzz.targets import tls as tls_target

    contexts, clients = tls_target._setup()

    def hello(client_ctx: ssl.SSLContext, **kwargs) -> bytes:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        client = client_ctx.wrap_bio(incoming, outgoing, **kwargs)
        try:
            client.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return outgoing.read()

    def client_flights(which: int) -> bytes:
        """All the client sent in a whole handshake; replayed, its key exchange and
        CertificateVerify no longer match the server's random (TLS 1.2 reaches them)."""
        server = TLSStream(contexts[which])
        to_client, to_server = ssl.MemoryBIO(), ssl.MemoryBIO()
        client = clients[which].wrap_bio(to_client, to_server, server_hostname="mx.test")
        sent = bytearray()
        for _ in range(10):
            try:
                client.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                client_done = False
            data = to_server.read()
            sent += data
            server.feed(data)
            server_done = server.handshake_done or server.do_handshake()
            to_client.write(server.data_to_send())
            if client_done and server_done:
                break
        server.close()
        return bytes(sent)

    alpn = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    alpn.check_hostname, alpn.verify_mode = False, ssl.CERT_NONE
    alpn.set_alpn_protocols(["imap", "pop3"])
    tls13 = hello(clients[0], server_hostname="mx.test")
    yield "clienthello-tls13", bytes([0]) + encode([(0, tls13)], WIDE)
    yield "clienthello-tls12", bytes([2]) + encode(
        [(0, hello(clients[2], server_hostname="mx.test"))], WIDE)
    yield "clienthello-alpn-no-sni-in-pieces", bytes([1]) + encode(
        [(1, piece) for piece in _pieces(hello(alpn), 5)], WIDE)
    yield "clienthello-truncated", bytes([0]) + encode([(0, tls13[:60]), (5, b"")], WIDE)
    yield "flights-tls12-client-cert", bytes([2]) + encode([(0, client_flights(2))], WIDE)
    yield "flights-tls13-client-cert", bytes([1]) + encode([(0, client_flights(1))], WIDE)
    yield "http-instead", bytes([0]) + encode([(0, b"GET / HTTP/1.0\r\n\r\n")], WIDE)
    yield "sslv2-hello", bytes([0]) + encode([(0, b"\x80\x2e\x01\x00\x02\x00\x15")], WIDE)
    for which in range(3):
        yield f"established-{which}", bytes([which | 4]) + encode([
            (2, b"a1 NOOP\r\n"), (4, b"* OK\r\n"), (7, b""), (3, b"a2 x\r\n")], WIDE)
        yield f"established-close-{which}", bytes([which | 4]) + encode([
            (2, b"QUIT\r\n"), (6, b""), (5, b"")], WIDE)


def _pieces(data: bytes, count: int) -> list[bytes]:
    size = -(-len(data) // count)
    return [data[i:i + size] for i in range(0, len(data), size)]


def main(targets: list[str]) -> None:
    """Rewrite ``corpus/TARGET/`` for the named targets (all when none is named)."""
    makers = {"machines": machines, "readers": readers, "backend_login": backend_login,
              "sasl": sasl, "imap_id": imap_id, "auth_http": auth_http, "proxy_protocol": proxy_protocol,
              "dns_answer": dns_answer, "config": config, "tls": tls}
    assert set(makers) == set(TARGETS)
    for target in targets or TARGETS:
        directory = CORPUS / target
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for name, data in makers[target]():
            (directory / name).write_bytes(data)
        print(f"{target}: {len(list(directory.iterdir()))} seeds")


if __name__ == "__main__":
    main(sys.argv[1:])
