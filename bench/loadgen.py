"""The load generator of the macro benchmark: one process, blocking TLS clients in threads.

Run by ``bench/compare.py`` once per round and proxy; prints one JSON object.  Every
run is bounded by ``--count`` operations and ``--duration`` seconds (whichever comes
first), and every socket operation by ``--timeout``.

Modes (one operation each):

* ``handshake``   connect, full TLS handshake, read the greeting line, close;
* ``resume``      the same, resuming the last TLS session (ticket or session ID,
                  depending on the server) — reuse is counted;
* ``imap``        TLS, LOGIN, SELECT, FETCH 1 BODY[], LOGOUT;
* ``bulk``        TLS, LOGIN, SELECT, ``--fetches`` × FETCH 1 BODY[] (the 10 MB
                  message), LOGOUT: the bytes received are counted;
* ``pop3``        TLS, USER, PASS, STAT, RETR 1, QUIT;
* ``smtp``        TLS, EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT;
* ``idle``        open ``--count`` TLS connections, read their greetings, print
                  ``ready``, hold them until a line arrives on stdin, close them.

Latency is per operation, from before connect() to the end of the operation;
``first_byte`` latencies (connect to the first greeting byte) are kept too.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import resource
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

from tests.support.clients import TLS_VERSIONS, client_context

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


class ProtocolError(Exception):
    """The proxy or the backend answered something unexpected."""


class Conn:
    """A TLS client connection with a line reader."""

    def __init__(self, args, session=None):
        self.t0 = time.perf_counter()
        raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = args.context.wrap_socket(raw, server_hostname="mx.test", session=session)
        self.buf = bytearray()
        self.first_byte = None
        version, cipher = self.sock.version(), self.sock.cipher()[0]
        self.tls = f"{version} {cipher}"

    def _fill(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise ProtocolError("connection closed by the proxy")
        if self.first_byte is None:
            self.first_byte = time.perf_counter() - self.t0
        self.buf += data

    def line(self) -> bytes:
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[: end + 1])
                del self.buf[: end + 1]
                return line
            self._fill()

    def exactly(self, n: int) -> int:
        """Read and drop ``n`` bytes; returns n."""
        left = n
        while left:
            if not self.buf:
                self._fill()
            take = min(left, len(self.buf))
            del self.buf[:take]
            left -= take
        return n

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def expect(self, prefix: bytes) -> bytes:
        line = self.line()
        if not line.startswith(prefix):
            raise ProtocolError(f"expected {prefix!r}, got {line[:200]!r}")
        return line

    def tagged(self, tag: bytes) -> int:
        """Read IMAP responses up to the tagged one (literals skipped); bytes of literals."""
        got = 0
        while True:
            line = self.line()
            match = _LITERAL.search(line)
            if match:
                got += self.exactly(int(match.group(1)))
                continue
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise ProtocolError(f"tagged reply {line[:200]!r}")
                return got

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def op_handshake(args, state) -> dict:
    conn = Conn(args)
    try:
        conn.expect(args.greeting)
        return {"first_byte": conn.first_byte, "tls": conn.tls}
    finally:
        conn.close()


def op_resume(args, state) -> dict:
    conn = Conn(args, session=state.get("session"))
    try:
        conn.expect(args.greeting)
        reused = conn.sock.session_reused
        state["session"] = conn.sock.session  # the newest ticket / session
        return {"first_byte": conn.first_byte, "reused": reused, "tls": conn.tls}
    finally:
        conn.close()


def _imap_login(conn, args) -> None:
    conn.expect(b"* OK")
    conn.send(b"a1 LOGIN %s %s\r\n" % (args.user.encode(), args.password.encode()))
    conn.tagged(b"a1")
    conn.send(b"a2 SELECT INBOX\r\n")
    conn.tagged(b"a2")


def op_imap(args, state) -> dict:
    conn = Conn(args)
    try:
        _imap_login(conn, args)
        conn.send(b"a3 FETCH 1 BODY.PEEK[]\r\n")
        got = conn.tagged(b"a3")
        if not got:
            raise ProtocolError("FETCH returned no literal")
        conn.send(b"a4 LOGOUT\r\n")
        conn.expect(b"* BYE")
        conn.tagged(b"a4")
        return {"first_byte": conn.first_byte, "bytes": got, "tls": conn.tls}
    finally:
        conn.close()


def op_bulk(args, state) -> dict:
    conn = Conn(args)
    try:
        _imap_login(conn, args)
        got = 0
        for i in range(args.fetches):
            tag = b"f%d" % i
            conn.send(tag + b" FETCH 1 BODY.PEEK[]\r\n")
            got += conn.tagged(tag)
        conn.send(b"a4 LOGOUT\r\n")
        conn.expect(b"* BYE")
        conn.tagged(b"a4")
        if got != args.fetches * args.message_size:
            raise ProtocolError(f"received {got} bytes, expected {args.fetches * args.message_size}")
        return {"bytes": got, "tls": conn.tls}
    finally:
        conn.close()


def op_pop3(args, state) -> dict:
    conn = Conn(args)
    try:
        conn.expect(b"+OK")
        conn.send(b"USER %s\r\n" % args.user.encode())
        conn.expect(b"+OK")
        conn.send(b"PASS %s\r\n" % args.password.encode())
        conn.expect(b"+OK")
        conn.send(b"STAT\r\n")
        conn.expect(b"+OK")
        conn.send(b"RETR 1\r\n")
        conn.expect(b"+OK")
        got = 0
        while True:
            line = conn.line()
            if line == b".\r\n":
                break
            got += len(line)
        conn.send(b"QUIT\r\n")
        conn.expect(b"+OK")
        return {"first_byte": conn.first_byte, "bytes": got, "tls": conn.tls}
    finally:
        conn.close()


def _smtp_reply(conn, code: bytes) -> None:
    while True:
        line = conn.line()
        if not line.startswith(code):
            raise ProtocolError(f"expected {code!r}, got {line[:200]!r}")
        if line[3:4] != b"-":
            return


MESSAGE = (b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: bench\r\n\r\n"
           + b"A line of the message body, long enough to be a typical one.\r\n" * 30)


def op_smtp(args, state) -> dict:
    conn = Conn(args)
    try:
        _smtp_reply(conn, b"220")
        conn.send(b"EHLO client.example.org\r\n")
        _smtp_reply(conn, b"250")
        token = base64.b64encode(b"\0%s\0%s" % (args.user.encode(), args.password.encode()))
        conn.send(b"AUTH PLAIN " + token + b"\r\n")
        _smtp_reply(conn, b"235")
        conn.send(b"MAIL FROM:<alice@example.com>\r\n")
        _smtp_reply(conn, b"250")
        conn.send(b"RCPT TO:<bob@example.com>\r\n")
        _smtp_reply(conn, b"250")
        conn.send(b"DATA\r\n")
        _smtp_reply(conn, b"354")
        conn.send(MESSAGE + b".\r\n")
        _smtp_reply(conn, b"250")
        conn.send(b"QUIT\r\n")
        _smtp_reply(conn, b"221")
        return {"first_byte": conn.first_byte, "bytes": len(MESSAGE), "tls": conn.tls}
    finally:
        conn.close()


OPERATIONS = {
    "handshake": op_handshake,
    "resume": op_resume,
    "imap": op_imap,
    "bulk": op_bulk,
    "pop3": op_pop3,
    "smtp": op_smtp,
}


def run_load(args) -> dict:
    operation = OPERATIONS[args.mode]
    deadline = time.monotonic() + args.duration
    lock = threading.Lock()
    started = [0]
    results: list[dict] = []
    errors: list[str] = []

    def worker() -> None:
        state: dict = {}
        if args.mode == "resume":
            operation(args, state)  # the full handshake that yields the session
        while True:
            with lock:
                if started[0] >= args.count or time.monotonic() >= deadline:
                    return
                started[0] += 1
            t0 = time.perf_counter()
            try:
                result = operation(args, state)
            except (OSError, ProtocolError) as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    if len(errors) > 20:
                        return
                continue
            result["latency"] = time.perf_counter() - t0
            with lock:
                results.append(result)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.duration + args.timeout + 5)
    wall = time.perf_counter() - begin
    return summarize(results, errors, wall)


def summarize(results: list[dict], errors: list[str], wall: float) -> dict:
    def quantiles(values: list[float]) -> dict:
        if not values:
            return {}
        values = sorted(values)
        pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]
        return {"median": statistics.median(values), "p90": pick(0.9), "p99": pick(0.99),
                "min": values[0], "max": values[-1]}

    out = {
        "ops": len(results),
        "errors": len(errors),
        "error_samples": errors[:5],
        "wall": wall,
        "bytes": sum(r.get("bytes", 0) for r in results),
        "latency": quantiles([r["latency"] for r in results]),
        "first_byte": quantiles([r["first_byte"] for r in results if r.get("first_byte")]),
    }
    out["tls"] = sorted({r["tls"] for r in results if r.get("tls")})
    if any("reused" in r for r in results):
        out["reused"] = sum(1 for r in results if r.get("reused"))
    return out


def run_idle(args) -> dict:
    """Open ``count`` TLS connections, report, hold them until told, then close them."""
    conns: list[Conn] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + args.duration
    per_thread = -(-args.count // args.concurrency)

    def opener(n: int) -> None:
        for _ in range(n):
            if time.monotonic() >= deadline:
                return
            try:
                conn = Conn(args)
                conn.expect(args.greeting)
            except (OSError, ProtocolError) as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                return
            with lock:
                conns.append(conn)

    threads = [threading.Thread(target=opener, args=(min(per_thread, args.count - i * per_thread),),
                                daemon=True) for i in range(args.concurrency)]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.duration + args.timeout)
    wall = time.perf_counter() - begin
    print(json.dumps({"ready": len(conns), "errors": len(errors), "error_samples": errors[:5],
                      "wall": wall}), flush=True)
    sys.stdin.readline()  # hold until the orchestrator has measured
    for conn in conns:
        conn.close()
    return {"ops": len(conns), "errors": len(errors), "wall": wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=sorted(OPERATIONS) + ["idle"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True, help="CA file the proxies' certificates chain to")
    parser.add_argument("--tls", choices=sorted(TLS_VERSIONS), default="1.3")
    parser.add_argument("--count", type=int, default=100, help="operations (at most)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (at most)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0, help="per socket operation")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--password", default="alice-secret")
    parser.add_argument("--fetches", type=int, default=10)
    parser.add_argument("--message-size", type=int, default=0)
    parser.add_argument("--greeting", default="* OK")
    args = parser.parse_args(argv)
    args.greeting = args.greeting.encode()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    args.context = client_context(args.ca, version=TLS_VERSIONS[args.tls])
    socket.setdefaulttimeout(args.timeout)
    result = run_idle(args) if args.mode == "idle" else run_load(args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
