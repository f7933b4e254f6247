"""A small TLS server for the tests, speaking TLS through TLSStream.

It shows how a session plugs TLSStream into an asyncio BufferedProtocol:
the transport reads into one preallocated buffer, the ciphertext is fed as a
memoryview slice, plaintext is decrypted into a second preallocated buffer,
and everything OpenSSL wants to send leaves in one transport write.

After the handshake it applies the client-certificate policy, then greets
with ``OK {json facts}`` (or ``ERR cert_error|no_cert`` and closes), echoes
what it receives, and answers ``QUIT`` with ``BYE`` and a close_notify.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading

from mailgate.tls import TLSClosed, TLSStream, TLSError

BUFFER_SIZE = 65536


class TLSServerProtocol(asyncio.BufferedProtocol):
    def __init__(self, context, events: list):
        self.context = context
        self.events = events
        self.tls: TLSStream | None = None
        self.transport = None
        self._inbuf = memoryview(bytearray(BUFFER_SIZE))
        self._plain = memoryview(bytearray(BUFFER_SIZE))
        self._lines = bytearray()
        self._closing = False

    # ---- asyncio -----------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.tls = TLSStream(self.context)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._inbuf

    def buffer_updated(self, nbytes: int) -> None:
        self.tls.feed(self._inbuf[:nbytes])
        self._process()

    def eof_received(self) -> bool:
        self.tls.feed_eof()
        self._process()
        return False

    def connection_lost(self, exc) -> None:
        if self.tls is not None:
            self.tls.close()
            self.tls = None

    # ---- TLS ------------------------------------------------------------------

    def _process(self) -> None:
        tls = self.tls
        if tls is None:
            return
        try:
            if self._closing:
                if tls.shutdown():
                    self._close()
                return
            if not tls.handshake_done:
                if not tls.do_handshake():
                    return self._flush()
                self._greet()
            while not self._closing:
                n = tls.recv_into(self._plain)
                if not n:
                    break
                self._lines += self._plain[:n]
                self._serve_lines()
        except TLSClosed:
            self.events.append(("closed",))
            tls.shutdown()
            self._close()
            return
        except TLSError as exc:
            self.events.append(("error", exc.level, exc.message))
            self._flush()
            tls.abort()
            self._close()
            return
        self._flush()

    def _flush(self) -> None:
        if self.tls is not None and self.tls.pending() and not self.transport.is_closing():
            self.transport.write(self.tls.data_to_send())

    def _close(self) -> None:
        self._flush()
        self.transport.close()

    def _greet(self) -> None:
        tls = self.tls
        check = tls.check_client_certificate()
        if not check.ok:
            self.events.append(("cert", check.verdict.value, check.message))
            self.transport.write(tls.encrypt(b"ERR " + check.verdict.value.encode() + b"\r\n"))
            self._quit()
            return
        cert = tls.client_certificate()
        facts = {
            "protocol": tls.protocol,
            "cipher": tls.cipher,
            "reused": tls.session_reused,
            "sni": tls.server_name,
            "alpn": tls.alpn_protocol,
            "pid": os.getpid(),
            **vars(cert),
        }
        self.events.append(("handshake", facts))
        self.transport.write(tls.encrypt(b"OK " + json.dumps(facts).encode() + b"\r\n"))

    def _serve_lines(self) -> None:
        while not self._closing:
            end = self._lines.find(b"\n")
            if end < 0:
                return
            line = bytes(self._lines[: end + 1])
            del self._lines[: end + 1]
            if line.rstrip() == b"QUIT":
                self.transport.write(self.tls.encrypt(b"BYE\r\n"))
                self._quit()
            else:
                self.transport.write(self.tls.encrypt(line))

    def _quit(self) -> None:
        self._closing = True
        if self.tls.shutdown():
            self._close()
        else:
            self._flush()


async def _serve(contexts: dict, events: list, ready) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    ports = {}
    for name, context in contexts.items():
        server = await loop.create_server(lambda c=context: TLSServerProtocol(c, events), "127.0.0.1", 0)
        servers.append(server)
        ports[name] = server.sockets[0].getsockname()[1]
    ready(ports)
    await asyncio.Event().wait()


class ServerThread:
    """Serve one or more contexts from an event loop in a background thread."""

    def __init__(self, loop_factory=asyncio.new_event_loop, **contexts):
        self.events: list = []
        self._loop = loop_factory()
        self._ready = threading.Event()
        self.ports: dict = {}

        def ready(ports):
            self.ports = ports
            self._ready.set()

        self._task = None
        self._thread = threading.Thread(target=self._run, args=(contexts, ready), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")

    def _run(self, contexts, ready) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(_serve(contexts, self.events, ready))
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    @property
    def port(self) -> int:
        return next(iter(self.ports.values()))

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)


class ServerProcess:
    """Serve contexts from a forked child process (a worker of the master).

    Contexts given as keywords exist before the fork, as in nginx's
    master/worker model; ``build``, when given, makes the contexts in the
    child instead, which is what separate machines (or separate masters)
    would have.
    """

    def __init__(self, build=None, **contexts):
        rfd, wfd = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the worker
            os.close(rfd)
            try:
                def ready(ports):
                    os.write(wfd, json.dumps(ports).encode() + b"\n")
                    os.close(wfd)

                asyncio.run(_serve(build() if build else contexts, [], ready))
            finally:
                os._exit(0)
        os.close(wfd)
        with os.fdopen(rfd, "rb") as f:
            line = f.readline()
        if not line:
            os.waitpid(self.pid, 0)
            raise RuntimeError("worker process did not start")
        self.ports = json.loads(line)

    @property
    def port(self) -> int:
        return next(iter(self.ports.values()))

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
