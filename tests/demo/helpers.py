"""Shared pieces of the demo server tests: sample messages, a server in a thread."""

from __future__ import annotations

import asyncio
import threading

from mailgate.demo import DemoMailServer, Limits, Mailstore

SIMPLE = (b"From: Alice Example <alice@example.com>\r\n"
          b"To: bob@example.com\r\n"
          b"Subject: lunch\r\n"
          b"Date: Tue, 04 Mar 2025 12:30:00 +0100\r\n"
          b"Message-ID: <1@example.com>\r\n"
          b"\r\n"
          b"Shall we?\r\n"
          b".a line that starts with a dot\r\n"
          b"..two dots\r\n"
          b".\r\n"
          b"the end\r\n")

MULTIPART = (b"From: bob@example.com\r\n"
             b"To: alice@example.com\r\n"
             b"Subject: report\r\n"
             b"MIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n"
             b"\r\n"
             b"preamble\r\n"
             b"--XYZ\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n"
             b"\r\n"
             b"see attachment\r\n"
             b"--XYZ\r\n"
             b"Content-Type: application/octet-stream\r\n"
             b"Content-Disposition: attachment; filename=\"r.bin\"\r\n"
             b"Content-Transfer-Encoding: base64\r\n"
             b"\r\n"
             b"AAECAw==\r\n"
             b"--XYZ--\r\n"
             b"epilogue\r\n")

NESTED = (b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
          b"--outer\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
          b"--outer\r\nContent-Type: message/rfc822\r\n\r\n"
          b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=\"in ner\"\r\n\r\n"
          b"--in ner\r\n\r\nplain\r\n--in ner\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n"
          b"--in ner--\r\n"
          b"--outer--\r\n")

BARE_LF = b"Subject: unix\n\nline one\n.dotted\nlast\n"

PASSWORD = "wonder land"


def make_store() -> Mailstore:
    """alice (three messages) and bob (none)."""
    store = Mailstore()
    store.add_user("alice", PASSWORD)
    store.add_user("bob", "builder", addresses=["bob@example.com", "Robert@Example.org"])
    for data in (SIMPLE, MULTIPART, BARE_LF):
        store.deliver("alice", data)
    return store


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class ServerThread:
    """A DemoMailServer running on its own loop in a thread, for blocking clients."""

    def __init__(self, store: Mailstore, loop_kind: str = "asyncio",
                 limits: Limits | None = None, **kwargs) -> None:
        self.store = store
        self.loop = new_loop(loop_kind)
        self.server = DemoMailServer(store, limits=limits, **kwargs)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.call(self.server.start())
        self.ports = self.server.ports

    def call(self, coro, timeout: float = 10):
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        try:
            self.call(self.server.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


class Transcript:
    """Drive a sans-I/O session: ``t.send(b"...")`` returns the reply bytes."""

    def __init__(self, session) -> None:
        self.session = session
        self.greeting = session.start()

    def send(self, data: bytes) -> bytes:
        return self.session.receive_data(data)

    @property
    def closed(self) -> bool:
        return self.session.closed
