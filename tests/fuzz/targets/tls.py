"""Target ``tls``: raw TLS records into a server-side ``TLSStream`` (``mailgate/tls``).

Every byte a TLS client sends reaches OpenSSL through mailgate's cffi layer and its C
helpers (``include/csrc/tls_conn.c``): ``feed()``/``feed_input()``, ``do_handshake()``,
``recv_into()``, ``send()``/``encrypt()``, ``shutdown()``/``abort()``, ``feed_eof()``,
then the facts read after the handshake (client certificate, SNI, ALPN ...).  OpenSSL
itself is not instrumented: coverage comes from the Python layer, so the seeds carry
real ClientHellos and client flights captured from Python's ssl module.

Contexts (byte 0, bits 0-1: 0, 1, 2, 2), built once from a configuration with
certificates generated at start-up (the test PKI of ``tests/support``): 0 TLS 1.2-1.3
with ECDSA and RSA certificates and a shared session cache; 1 ``ssl_verify_client
optional_no_ca`` with a client CA and CRL; 2 TLS 1.2 only, RSA, ``ssl_verify_client
on``, tickets off.

Input: byte 0 also chooses the mode (bit 2): *raw*, where the steps' chunks are all
the client ever sends, or *established*, where a Python ssl client first completes a
handshake in memory (with a client certificate on contexts 1 and 2) and the steps
then mix its real records with raw bytes.  Steps (:mod:`tests.fuzz.common`, ``WIDE``
sizes): 0 the chunk arrives through ``feed()``, 1 through ``input`` and
``do_handshake(n)``/``feed_input(n)``, 2 the client sends the chunk as application
data (established; raw: as 0), 3 the client sends it with one byte of its record
flipped (established; raw: as 0), 4 the server sends the chunk, 5 the client's
close_notify (raw: the end of input), 6 the server's ``shutdown()``, 7 the facts.  After
each step the server advances as the session does: handshake, or read everything.

Contract: only ``TLSHandshakeError``, ``TLSError`` and ``TLSClosed`` (each ends the
connection: the alert is flushed, the connection closed); ``has_input()`` False means
``recv_into()`` returns 0; the plaintext the server reads is exactly a prefix of what
the client sent; what the server sends, the client reads; no connection is leaked.
"""

from __future__ import annotations

import functools
import ssl
import tempfile

from mailgate._openssl import lib
from mailgate.tls import SessionZones, TLSClosed, TLSStream, TLSError

from tests.fuzz.common import WIDE, steps
from tests.support.certs import make_pki
from tests.support.clients import client_context
from tests.tls.clients import memory_handshake
from tests.tls.conf import context

MAX_LEN = 16384
_BUFFER = 4096

DICTIONARY = (
    b"\x16\x03\x01", b"\x16\x03\x03", b"\x17\x03\x03", b"\x15\x03\x03\x00\x02",
    b"\x14\x03\x03\x00\x01\x01", b"\x01\x00", b"\x03\x03", b"\x13\x01", b"\xc0\x2b",
    b"\x00\x00", b"\x00\x10", b"\x00\x2b", b"\x00\x33", b"\x00\x0d", b"\x00\x0a",
    b"\x00\x1d\x00\x20", b"\x00\x17", b"\x0b\x00", b"\x10\x00", b"\x0f\x00", b"mx.test",
    b"imap", b"GET / HTTP/1.0\r\n",
)


@functools.cache
def _setup() -> tuple:
    """(contexts, client contexts), made once per process.

    The certificate files are needed only while the contexts load them.
    """
    with tempfile.TemporaryDirectory(prefix="mailgate-fuzz-tls-") as directory:
        pki = make_pki(directory)
        zones = SessionZones()
        client_ca, crl = pki.ca.cert, pki.crl_ca
        contexts = (
            context(directory + "/0", pki, "ssl_protocols TLSv1.2 TLSv1.3;"
                    " ssl_session_cache shared:FUZZ:1m;", names=("ecdsa", "rsa"), zones=zones),
            context(directory + "/1", pki, "ssl_protocols TLSv1.2 TLSv1.3;"
                    " ssl_verify_client optional_no_ca; ssl_verify_depth 2;"
                    f" ssl_client_certificate {client_ca}; ssl_crl {crl};"),
            context(directory + "/2", pki, "ssl_protocols TLSv1.2; ssl_verify_client on;"
                    f" ssl_client_certificate {client_ca}; ssl_session_tickets off;"
                    " ssl_session_cache builtin:100;", names=("rsa",)),
        )
        clients = (
            client_context(pki),
            client_context(pki, client_cert=pki.client),
            client_context(pki, version=ssl.TLSVersion.TLSv1_2, client_cert=pki.client),
        )
    return contexts, clients


class _Ended(Exception):
    """The connection ended the documented way (the session closes it)."""


class _Session:
    """One server connection, its optional client, and what each side has seen."""

    def __init__(self, server: TLSStream, client: ssl.SSLObject | None) -> None:
        self.server = server
        self.client = client
        self.sent = bytearray()  # plaintext the client sent
        self.read = bytearray()  # plaintext the server read
        self.buffer = bytearray(_BUFFER)

    def to_server(self, data: bytes) -> None:
        """Ciphertext from the client (or the fuzzer) arrives at the server."""
        self.server.feed(data)

    def client_records(self) -> bytes:
        """What the client has written since (nothing without a client)."""
        return self.client.outgoing.read() if self.client is not None else b""

    def flush(self) -> None:
        """What the server wrote goes to the client (or nowhere without one)."""
        data = self.server.data_to_send()
        if self.client is not None and data:
            self.client.incoming.write(data)

    def advance(self) -> None:
        """The session's turn: handshake, or decrypt everything there is."""
        server = self.server
        try:
            if not server.handshake_done:
                server.do_handshake()
                return
            # each call takes a record or more, or ends in an exception
            for _ in range(_BUFFER):
                if not server.has_input():
                    assert server.recv_into(self.buffer) == 0, "has_input() was False"
                    return
                n = server.recv_into(self.buffer)
                if n == 0:
                    return
                self.read += self.buffer[:n]
                assert self.sent.startswith(self.read), "the server read other bytes"
            raise AssertionError("recv_into() never ran out of input")
        except (TLSError, TLSClosed) as exc:
            raise _Ended from exc
        finally:
            self.flush()

    def step(self, op: int, chunk: bytes) -> None:
        """One step of the input (the module docstring), then the session's turn."""
        server, client = self.server, self.client
        if op == 1:
            view = server.input
            n = min(len(view), len(chunk))
            view[:n] = chunk[:n]
            if server.handshake_done:
                server.feed_input(n)
            else:
                try:
                    server.do_handshake(n)
                except TLSError as exc:
                    raise _Ended from exc
                finally:
                    self.flush()
        elif op in (2, 3) and client is not None:
            try:
                client.write(chunk or b"\0")
            except ssl.SSLError:
                self.client = None  # it has seen the server's close or an alert
            else:
                self.sent += chunk or b"\0"
                records = bytearray(self.client_records())
                if op == 3:
                    records[len(chunk) % len(records)] ^= 0x20
                self.to_server(bytes(records))
        elif op == 4 and server.handshake_done:
            self._server_sends(chunk)
        elif op == 5:
            if client is not None:
                try:
                    client.unwrap()
                except ssl.SSLWantReadError:
                    pass  # the server's close_notify has not come: ours is sent
                except ssl.SSLError:
                    pass  # it had failed already: whatever it wrote goes
                self.to_server(self.client_records())
                self.client = None
            elif server.feed_eof() and server.handshake_done:
                try:
                    server.recv_into(self.buffer)
                except TLSClosed as exc:
                    raise _Ended from exc
                raise AssertionError("feed_eof() said only the close was left")
        elif op == 6:
            try:
                server.shutdown()
            except TLSError as exc:
                raise _Ended from exc
            finally:
                self.flush()
        elif op == 7 and server.handshake_done:
            _facts(server)
        else:
            self.to_server(chunk)
        self.advance()

    def _server_sends(self, chunk: bytes) -> None:
        server = self.server
        try:
            records = server.encrypt(chunk)
        except TLSError as exc:
            raise _Ended from exc
        client = self.client
        if client is None or not chunk:
            return
        client.incoming.write(records)
        got = bytearray()
        for _ in range(len(chunk) + 1):  # a byte or more per read
            try:
                got += client.read(len(chunk) - len(got))
            except ssl.SSLError:
                break  # more to come, or the stream was closed or broken before
            if len(got) >= len(chunk):
                break
        assert bytes(got) == chunk, "the client read other bytes"


def _facts(server: TLSStream) -> None:
    """Everything the session and auth_http read after the handshake."""
    assert server.protocol.startswith("TLSv1.") and server.cipher
    assert server.server_name in (None, "mx.test")
    assert server.alpn_protocol is None or isinstance(server.alpn_protocol, str)
    assert server.session_reused in (True, False) and server.verify_result >= 0
    assert server.peer_common_name() in (None, "client one")
    assert server.server_certificate_algorithms()[1] in ("EC256", "RSA2048")
    check = server.check_client_certificate()
    assert check.ok or check.message
    certificate = server.client_certificate()
    assert certificate.verify == "NONE" or certificate.pem.startswith("-----BEGIN")


def one_input(data: bytes) -> None:
    """Run one server connection on ``data`` (see the module docstring)."""
    if not data:
        return
    contexts, clients = _setup()
    which, established = min(data[0] & 3, 2), bool(data[0] & 4)
    live = lib.mg_conn_live()
    if established:
        server, client = memory_handshake(contexts[which], clients[which])
        session = _Session(server, client)
        session.advance()
    else:
        session = _Session(TLSStream(contexts[which]), None)
    try:
        for op, chunk in steps(data, 1, WIDE):
            session.step(op, chunk)
    except _Ended:
        session.server.abort()
    finally:
        session.server.close()
    assert lib.mg_conn_live() == live, "a TLS connection was not freed"
