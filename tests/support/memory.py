"""In-memory TLS peers and sessions: no sockets anywhere (the microbenchmarks of bench/
and unit tests of the session layer).

* ``server_context()`` builds mailgate's ``TLSContext`` from a ``mail {}`` text, as the
  proxy does; ``TLSPair`` joins a ``TLSStream`` to a client made with Python's
  ``ssl`` module over memory BIOs and runs the handshake between them.
* ``MemoryTransport`` is an asyncio transport that keeps (or only counts) what is
  written; ``deliver(protocol, data)`` hands bytes to a ``BufferedProtocol`` the way a
  loop does.
* ``MemoryProxy.session()`` runs a real ``ClientSession`` (and its ``BackendSession``)
  on memory transports: the client logs in through an auth callable, the backend
  login is answered by a scripted IMAP backend, and the session ends up in the
  relay phase (a ``RelaySession``), where a benchmark pushes chunks in from either side.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile

from mailgate import Config
from mailgate.log import ErrorLog, LogFiles
from mailgate.protocol.events import AuthOK
from mailgate.proxy.mailproxy import Listener, MailProxy, ServerRuntime
from mailgate.proxy.session import ClientSession
from mailgate.proxy.timers import TimerWheel
from mailgate.tls import SessionZones, TLSStream, build_contexts

from .clients import TLS_VERSIONS, client_context
from .configs import certificates, load, mail_text, server_block

CIPHERS = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"


def mail_config(pki, *, key: str = "ecdsa", version: str = "1.3", extra: str = "") -> Config:
    """One implicit-TLS IMAP server and one plaintext IMAP server (never bound)."""
    directory = tempfile.mkdtemp(prefix="mailgate-memory-")
    mail = f"{certificates(pki, key)} ssl_protocols TLSv{version}; ssl_ciphers {CIPHERS}; {extra}"
    text = mail_text(server_block(listen="127.0.0.1:1993 ssl"), server_block(listen="127.0.0.1:1143"),
                     mail=mail, main=f"error_log {directory}/error.log crit;")
    return load(text, directory)


def server_context(pki, **kw):
    """mailgate's TLS context of the implicit-TLS server of ``mail_config(**kw)``."""
    config = mail_config(pki, **kw)
    zones = SessionZones()
    zones.configure(config)
    return build_contexts(config, zones)[0]


class MemoryClient:
    """A TLS client over memory BIOs (Python's ``ssl``)."""

    def __init__(self, context: ssl.SSLContext, *, session: ssl.SSLSession | None = None,
                 server_hostname: str = "mx.test"):
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname,
                                    session=session)

    def handshake_step(self) -> bool:
        try:
            self.obj.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    def records(self, payload: bytes, count: int) -> list[bytes]:
        """``count`` records of ``payload`` as separate ciphertext chunks."""
        out = []
        for _ in range(count):
            self.obj.write(payload)
            out.append(self.outgoing.read())
        return out

    def read_all(self) -> bytes:
        """All plaintext that the received ciphertext holds (tickets are consumed)."""
        data = []
        while True:
            try:
                chunk = self.obj.read(65536)
            except ssl.SSLWantReadError:
                break
            if not chunk:
                break
            data.append(chunk)
        return b"".join(data)


class TLSPair:
    """A mailgate ``TLSStream`` and a Python client, handshaken in memory; the client
    has processed all the server sent (TLS 1.3 tickets too)."""

    def __init__(self, server_ctx, client_ctx: ssl.SSLContext, *,
                 session: ssl.SSLSession | None = None, server_hostname: str = "mx.test",
                 log=None):
        self.server = TLSStream(server_ctx, log=log)
        self.client = MemoryClient(client_ctx, session=session, server_hostname=server_hostname)
        done_client = done_server = False
        for _ in range(20):
            done_client = self.client.handshake_step()
            data = self.client.outgoing.read()
            if data:
                self.server.feed(data)
            if not done_server:
                done_server = self.server.do_handshake()
            out = self.server.data_to_send()
            if out:
                self.client.incoming.write(bytes(out))
            if done_client and done_server and not out and not data:
                break
        assert done_client and done_server, "in-memory handshake did not finish"
        self.client.read_all()  # TLS 1.3 tickets

    def close(self) -> None:
        self.server.close()


class MemoryTransport(asyncio.Transport):
    """A transport that keeps what is written (or only counts it) and never blocks."""

    def __init__(self):
        super().__init__()
        self.written = bytearray()
        self.keep = True
        self.bytes = 0
        self.writes = 0
        self.closed = False

    def get_extra_info(self, name, default=None):
        # no socket: the session takes it for a UNIX-socket client (peer name "")
        return "" if name == "peername" else default

    def set_write_buffer_limits(self, high=None, low=None):
        pass

    def get_write_buffer_size(self):
        return 0

    def write(self, data) -> None:
        self.bytes += len(data)
        self.writes += 1
        if self.keep:
            self.written += data

    def take(self) -> bytes:
        data = bytes(self.written)
        self.written.clear()
        return data

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def deliver(protocol: asyncio.BufferedProtocol, data) -> None:
    """What a loop does on a readable socket: get_buffer, copy, buffer_updated."""
    view = memoryview(data)
    while len(view):
        buf = protocol.get_buffer(len(view))
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        protocol.buffer_updated(n)
        view = view[n:]


class MemoryProxy:
    """A proxy's listener and runtimes on memory transports; sessions come from ``session()``.

    ``tls`` picks the implicit-TLS server (clients are ``MemoryClient``s) or the
    plaintext one.  ``loop`` must be a pure-asyncio loop: its ``create_connection``
    is replaced by one that hands the backend protocol a memory transport.
    """

    def __init__(self, pki, loop: asyncio.AbstractEventLoop, *, tls: bool, version: str = "1.3",
                 extra: str = ""):
        self.pki = pki
        self.loop = loop
        self.tls = tls
        self.version = version
        self.config = config = mail_config(pki, version=version, extra=extra)

        async def auth(facts):
            return AuthOK("127.0.0.1", 143)

        self.proxy = MailProxy(config, auth=auth, log_files=LogFiles())
        self.proxy.timers = TimerWheel(loop)  # what start() makes, without listening
        zones = SessionZones()
        zones.configure(config)
        contexts = build_contexts(config, zones)
        runtimes = {
            server: ServerRuntime(server, ctx, ErrorLog(server.error_log, self.proxy.log_files),
                                  self.proxy.counters, auth)
            for server, ctx in zip(config.servers, contexts)
        }
        entry = config.listen_sockets()[0 if tls else 1]
        self.listener = Listener(self.proxy, entry, runtimes)
        self.client_context = client_context(pki, version=TLS_VERSIONS[version]) if tls else None
        self._connecting: RelaySession | None = None
        loop.create_connection = self._create_connection

    async def _create_connection(self, factory, host, port, **kw):
        relay = self._connecting
        relay.backend_protocol = factory()
        relay.backend_protocol.connection_made(relay.backend_transport)
        return relay.backend_transport, relay.backend_protocol

    def session(self) -> RelaySession:
        """A new client session, logged in and relaying."""
        relay = RelaySession(self)
        self._connecting = relay
        try:
            relay.session = self.loop.run_until_complete(relay.open())
        finally:
            self._connecting = None
        return relay


class RelaySession:
    """A real ``ClientSession`` logged in and relaying, on memory transports."""

    TAG = b"a1"

    def __init__(self, proxy: MemoryProxy):
        self.proxy = proxy
        self.client_transport = MemoryTransport()
        self.backend_transport = MemoryTransport()
        self.backend_protocol = None
        self.client = MemoryClient(proxy.client_context) if proxy.tls else None
        self.session: ClientSession | None = None

    def to_proxy(self, session: ClientSession, plaintext: bytes) -> None:
        """Client bytes into the session (encrypted first with TLS)."""
        if self.client is not None:
            self.client.obj.write(plaintext)
            plaintext = self.client.outgoing.read()
        deliver(session, plaintext)

    def from_proxy(self) -> bytes:
        """What the session wrote to the client (decrypted with TLS)."""
        data = self.client_transport.take()
        if self.client is None:
            return data
        self.client.incoming.write(data)
        return self.client.read_all()

    async def open(self) -> ClientSession:
        session = ClientSession(self.proxy.listener, 1)
        session.connection_made(self.client_transport)
        if self.client is not None:
            for _ in range(20):
                done = self.client.handshake_step()
                data = self.client.outgoing.read()
                if data:
                    deliver(session, data)
                self.client.incoming.write(self.client_transport.take())
                if done and not data:
                    break
        greeting = self.from_proxy()
        assert greeting.startswith(b"* OK"), greeting
        self.to_proxy(session, self.TAG + b" LOGIN alice secret\r\n")
        for _ in range(100):  # the auth task, then the backend "connection"
            await asyncio.sleep(0)
            if self.backend_protocol is not None:
                break
        assert self.backend_protocol is not None, "no backend connection was made"
        backend = self.backend_transport
        deliver(self.backend_protocol, b"* OK backend ready\r\n")
        for _ in range(3):  # LOGIN {n}, user {n}, password
            line = backend.take()
            if line.endswith(b"}\r\n"):
                deliver(self.backend_protocol, b"+ go ahead\r\n")
            else:
                deliver(self.backend_protocol, self.TAG + b" OK LOGIN completed\r\n")
        assert session.phase == "relay", session.phase
        assert self.from_proxy().startswith(self.TAG + b" OK")
        self.client_transport.keep = self.backend_transport.keep = False
        return session

    def close(self) -> None:
        """The client goes away: the session ends (and the backend is closed)."""
        self.session.connection_lost(None)
