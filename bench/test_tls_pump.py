"""Microbenchmarks of the TLS record pump: ``TLSStream`` over memory BIOs.

Run:  PYTHONPATH=engine python -m pytest bench/test_tls_pump.py --benchmark-only

Inbound: ciphertext records made by a Python ``ssl`` client are fed and decrypted
(``feed`` + ``recv_into``), one record per read or 32 KiB of records per read (what
the session reads from a socket at once).  Outbound: plaintext is encrypted and
taken (``send`` + ``data_to_send``).  TLS 1.2 and 1.3, small (100-byte) and full
(16 KiB) records.  Figures per record are in bench/RESULTS.md.
"""

from __future__ import annotations

import pytest

from tests.support.clients import TLS_VERSIONS, client_context
from tests.support.memory import TLSPair, server_context

RECORDS = 64
SIZES = {"small": 100, "16k": 16384}
READ_SIZE = 32 * 1024


@pytest.fixture(scope="module", params=["1.2", "1.3"])
def pair(request, pki):
    version = request.param
    pair = TLSPair(server_context(pki, version=version),
                   client_context(pki, version=TLS_VERSIONS[version]))
    pair.version = version
    yield pair
    pair.close()


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("reads", ["per-record", "32k"])
def test_recv(benchmark, pair, size, reads):
    """``RECORDS`` records in: feed + recv_into, per record or in 32 KiB reads."""
    payload = b"x" * SIZES[size]
    server = pair.server
    buf = memoryview(bytearray(READ_SIZE))

    def setup():
        chunks = pair.client.records(payload, RECORDS)
        if reads == "32k":
            data = b"".join(chunks)
            chunks = [data[i:i + READ_SIZE] for i in range(0, len(data), READ_SIZE)]
        return (chunks,), {}

    def pump(chunks):
        total = 0
        for chunk in chunks:
            server.feed(chunk)
            while True:
                n = server.recv_into(buf)
                if not n:
                    break
                total += n
        return total

    benchmark.group = f"tls_recv_{pair.version}_{size}_{reads}"
    benchmark.extra_info.update(records=RECORDS, record_bytes=len(payload))
    total = benchmark.pedantic(pump, setup=setup, rounds=200 if size == "small" else 40)
    assert total == RECORDS * len(payload)


@pytest.mark.parametrize("size", sorted(SIZES))
def test_send(benchmark, pair, size):
    """``RECORDS`` plaintext writes out: encrypt, one record each."""
    payload = b"y" * SIZES[size]
    server = pair.server

    def pump():
        total = 0
        for _ in range(RECORDS):
            total += len(server.encrypt(payload))
        return total

    benchmark.group = f"tls_send_{pair.version}_{size}"
    benchmark.extra_info.update(records=RECORDS, record_bytes=len(payload))
    assert benchmark(pump) > RECORDS * len(payload)
