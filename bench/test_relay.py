"""Microbenchmarks of the relay path per chunk, through a real ``ClientSession``.

Run:  PYTHONPATH=engine python -m pytest bench/test_relay.py --benchmark-only

The session is logged in and relaying on memory transports (``tests.support.memory``): no
sockets, no event-loop I/O, only what the proxy does per chunk.

* client -> backend: the client's bytes (TLS records, or plaintext) delivered as a
  loop delivers them (``get_buffer`` / ``buffer_updated``) until the backend
  transport's ``write``;
* backend -> client: a backend chunk through the relay buffer, TLS (``send`` +
  ``data_to_send``) and the client transport's ``write``.

Chunks are IMAP-sized commands (100 bytes) from the client, and proxy_buffer-sized
(4 KiB, nginx's default, and 16 KiB) reads from the backend.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.memory import MemoryProxy, deliver

CHUNKS = 64


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _session(pki, loop, tls, proxy_buffer="4k"):
    return MemoryProxy(pki, loop, tls=tls, extra=f"proxy_buffer {proxy_buffer};").session()


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_client_to_backend(benchmark, pki, loop, tls):
    relay = _session(pki, loop, tls)
    command = b"a2 UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER])  \r\n"
    command = command + b" " * (100 - len(command))
    session, backend = relay.session, relay.backend_transport

    def setup():
        if relay.client is not None:
            return (relay.client.records(command, CHUNKS),), {}
        return ([command] * CHUNKS,), {}

    pumped = []

    def pump(chunks):
        for chunk in chunks:
            deliver(session, chunk)
        pumped.append(len(chunks))

    before = backend.bytes
    benchmark.group = "relay_client_to_backend"
    benchmark.extra_info.update(chunks=CHUNKS, chunk_bytes=len(command))
    benchmark.pedantic(pump, setup=setup, rounds=300)
    assert backend.bytes - before == sum(pumped) * len(command)
    relay.close()


@pytest.mark.parametrize("size", ["4k", "16k", "64k"])
@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_backend_to_client(benchmark, pki, loop, tls, size):
    relay = _session(pki, loop, tls, proxy_buffer="16k" if size == "64k" else size)
    chunk = b"z" * {"4k": 4096, "16k": 16384, "64k": 65536}[size]
    protocol, client = relay.backend_protocol, relay.client_transport

    def pump():
        for _ in range(CHUNKS):
            deliver(protocol, chunk)

    before = client.bytes
    benchmark.group = f"relay_backend_to_client_{size}"
    benchmark.extra_info.update(chunks=CHUNKS, chunk_bytes=len(chunk))
    benchmark(pump)
    assert client.bytes - before >= CHUNKS * len(chunk)
    relay.close()


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_session(benchmark, pki, loop, tls):
    """A whole session in memory: accept, TLS 1.3 handshake, greeting, LOGIN through an
    auth callable, backend login, relay set-up, end.  Crypto included; no auth_http,
    no sockets, no event-loop I/O: the Python cost of the session layer and machines."""
    proxy = MemoryProxy(pki, loop, tls=tls)
    benchmark.group = "session"
    benchmark.pedantic(lambda: proxy.session().close(), rounds=100, warmup_rounds=5)
