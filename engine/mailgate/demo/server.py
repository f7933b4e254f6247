"""The demo mail server on an asyncio loop: listeners, connections, idle timers.

Everything protocol-related happens in the sans-I/O sessions; a connection here
only moves bytes between its transport and its session and says goodbye on idle
timeout or server shutdown.  It stops reading while the client is not reading
our replies, and while its session holds unread pipelined commands (the session
is *blocked*), so neither output nor input piles up.  Works on any running loop
(asyncio, uvloop).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Self

from mailgate.demo._session import Limits, Session, log
from mailgate.demo.imap import ImapSession
from mailgate.demo.pop3 import Pop3Session
from mailgate.demo.smtp import SmtpSession
from mailgate.demo.store import Mailstore

SESSIONS: dict[str, type[Session]] = {
    "imap": ImapSession, "pop3": Pop3Session, "smtp": SmtpSession}

#: seconds a goodbye may take to reach a client that does not read, before the abort
CLOSE_GRACE = 5.0


class _Connection(asyncio.Protocol):
    def __init__(self, server: DemoMailServer, make_session: Callable[..., Session],
                 peers: set[_Connection]) -> None:
        self._server = server
        self._peers = peers             # the open connections of the same protocol
        self._make_session = make_session
        self._loop = asyncio.get_running_loop()
        self._timeout = server.limits.idle_timeout
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_input = 0.0
        self._write_paused = False
        self._reading = True
        self._resume_pending = False
        self.lost = self._loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.session = self._make_session(
            self._server.store, hostname=self._server.hostname, limits=self._server.limits,
            peer=str(peer[0]) if isinstance(peer, tuple) else "")
        self._last_input = self._loop.time()
        self._timer = self._loop.call_later(self._timeout, self._idle)
        full = len(self._peers) >= self._server.limits.max_connections
        self._server._connections.add(self)
        self._peers.add(self)
        self._write(self.session.refuse() if full else self.session.start())

    def data_received(self, data: bytes) -> None:
        self._last_input = self._loop.time()
        self._write(self.session.receive_data(data))
        self._flow()

    def eof_received(self) -> bool:
        # Close our side too.  Commands still waiting in a blocked session are not
        # lost: reading is paused while it is blocked, so the end of input is only
        # seen once they have all been answered.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._server._connections.discard(self)
        self._peers.discard(self)
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._flow()

    def _flow(self) -> None:
        """Read only while the client reads us and the session wants input."""
        if self.transport.is_closing():
            return
        reading = not self._write_paused and not self.session.blocked
        if reading != self._reading:
            self._reading = reading
            if reading:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()
        if self.session.blocked and not self._write_paused and not self._resume_pending:
            self._resume_pending = True
            self._loop.call_soon(self._resume)

    def _resume(self) -> None:
        self._resume_pending = False
        if not self.transport.is_closing():
            self._write(self.session.resume())
            self._flow()

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        if data:
            transport.write(data)
        if self.session.closed:
            transport.close()
            # a client that does not read would keep a closing transport forever
            self._timer.cancel()
            self._timer = self._loop.call_later(CLOSE_GRACE, transport.abort)

    def _idle(self) -> None:
        left = self._last_input + self._timeout - self._loop.time()
        if left > 0:
            self._timer = self._loop.call_later(left, self._idle)
        else:
            self._write(self.session.timed_out())

    def shutdown(self) -> None:
        """The server is stopping: goodbye, then close."""
        self._write(self.session.shutdown())


class DemoMailServer:
    """In-memory IMAP, POP3 and SMTP servers sharing one :class:`Mailstore`.

    ::

        store = Mailstore()
        store.add_user("alice", "wonderland")
        async with DemoMailServer(store, host="127.0.0.1") as server:
            server.ports            # {"imap": 40123, "pop3": 40124, "smtp": 40125}
            await server.serve_forever()

    A port of 0 binds an ephemeral port, ``None`` leaves that protocol out.
    ``host`` is one address (or a name, of which the first address is used).
    ``hostname`` is the name the greetings announce.
    """

    def __init__(self, store: Mailstore, *, host: str = "127.0.0.1",
                 imap_port: int | None = 0, pop3_port: int | None = 0,
                 smtp_port: int | None = 0, hostname: str = "localhost",
                 limits: Limits | None = None) -> None:
        if not hostname.isascii() or not hostname or any(c.isspace() for c in hostname):
            raise ValueError("hostname must be a non-empty ASCII name without spaces")
        self.store = store
        self.host = host
        self.hostname = hostname
        self.limits = limits or Limits()
        self._wanted = {name: port for name, port in
                        (("imap", imap_port), ("pop3", pop3_port), ("smtp", smtp_port))
                        if port is not None}
        self._servers: dict[str, asyncio.Server] = {}
        self._connections: set[_Connection] = set()
        self._closing: asyncio.Future | None = None

    @property
    def ports(self) -> dict[str, int]:
        """The bound port of each started protocol, e.g. ``{"imap": 40123, ...}``."""
        return {name: srv.sockets[0].getsockname()[1] for name, srv in self._servers.items()}

    @property
    def connections(self) -> int:
        """Open client connections."""
        return len(self._connections)

    async def start(self) -> None:
        """Bind and start listening; on failure nothing stays bound."""
        if self._servers:
            raise RuntimeError("the demo mail server is already started")
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.host, None, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        address = infos[0][4][0]
        try:
            for name, port in self._wanted.items():
                session, peers = SESSIONS[name], set()
                self._servers[name] = await loop.create_server(
                    lambda session=session, peers=peers: _Connection(self, session, peers),
                    address, port, reuse_address=True)
        except BaseException:
            await self._close_listeners()
            raise
        self._closing = loop.create_future()
        log.debug("demo mail server listening on %s: %s", address, self.ports)

    async def _close_listeners(self) -> None:
        servers, self._servers = list(self._servers.values()), {}
        for srv in servers:
            srv.close()
        for srv in servers:
            await srv.wait_closed()

    async def serve_forever(self) -> None:
        """Run until :meth:`close` is called (from another task)."""
        if self._closing is None:
            raise RuntimeError("start the demo mail server first")
        await asyncio.shield(self._closing)

    async def close(self) -> None:
        """Stop listening, say goodbye to every client and wait until they are gone."""
        servers = list(self._servers.values())
        for srv in servers:
            srv.close()
        connections = list(self._connections)
        for conn in connections:
            conn.shutdown()
        if connections:
            await asyncio.wait([c.lost for c in connections], timeout=CLOSE_GRACE + 1)
        await self._close_listeners()
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()
