"""ssl_session_store: TLS sessions resumed on another node through a real Redis, with
real Dovecot behind two embedded mailgate nodes; what Redis holds is of no use
without the key; Redis gone costs full handshakes, never a login."""

from __future__ import annotations

import os
import signal
import ssl
import threading
import time

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from mailgate.proxy.session_store import RETRY_AFTER, store_keys, unseal

from tests.cluster.helpers import imaps_login, wait_stored
from tests.support.clients import client_context
from tests.support.components import require
from tests.support.procs import wait_until
from tests.support.redis_server import RedisServer
from tests.support.users import ALICE

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3

NODE = """
    auth_http $auth_http;
    ssl_certificate $rsa_cert; ssl_certificate_key $rsa_key;
    ssl_session_tickets off;
    ssl_session_store $redis prefix=test: timeout=500ms;
    ssl_session_store_key $store_key;
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
"""


@pytest.fixture
def redis_server(tmp_path, port_allocator):
    require("redis-server")
    server = RedisServer(tmp_path / "redis", port_allocator)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nodes(tmp_path, embedded_factory, redis_server, auth_server, dovecot):
    """start(body=NODE, count=2) -> embedded nodes sharing ``redis_server``."""
    key = tmp_path / "store.key"
    key.write_bytes(bytes(range(64)))

    def start(body: str = NODE, count: int = 2):
        made = []
        for _ in range(count):
            node = embedded_factory()
            node.values.update(redis=redis_server.url, store_key=key)
            made.append(node.start(body))
        return made

    return start


@pytest.mark.parametrize("version", [TLS12, TLS13])
def test_sessions_resume_on_the_other_node(pki, nodes, redis_server, version):
    one, two = nodes()
    ctx = client_context(pki, version=version)
    first = imaps_login(one.address("imaps"), ctx, ALICE)
    assert not first.reused
    wait_stored(redis_server)
    session = first.session
    for i in range(6):
        node = (two, one)[i % 2]
        login = imaps_login(node.address("imaps"), ctx, ALICE, session)
        assert login.reused, f"connection {i} to node {node.address('imaps')} did not resume"
        session = login.session


def test_without_a_store_the_other_node_does_not_resume(pki, nodes):
    # the control for the test above: nothing else shares these nodes' sessions
    one, two = nodes(NODE.replace("ssl_session_store ", "# "))
    ctx = client_context(pki, version=TLS12)
    first = imaps_login(one.address("imaps"), ctx, ALICE)
    assert not imaps_login(two.address("imaps"), ctx, ALICE, first.session).reused


def _entries(redis_server) -> dict[bytes, bytes]:
    client = redis_server.client()
    return {name: client.get(name) for name in client.keys("*")}


def test_redis_holds_nothing_usable_without_the_key(tmp_path, pki, nodes, redis_server):
    one, two = nodes()
    ctx = client_context(pki, version=TLS12)
    login = imaps_login(one.address("imaps"), ctx, ALICE)
    session_id = login.session.id
    wait_stored(redis_server)
    entries = _entries(redis_server)
    assert len(entries) == 1
    (name, value), = entries.items()

    # the name is the prefix and an HMAC of the ID, the value a sealed blob: neither
    # shows the session ID, and the value is not a session OpenSSL could read
    assert name.startswith(b"test:") and len(name) == len(b"test:") + 64
    assert 0 < redis_server.client().ttl(name) <= 300  # ssl_session_timeout's default
    assert session_id not in name and session_id.hex().encode() not in name
    assert session_id not in value
    assert b"\x30\x82" not in value[:16]  # no DER SEQUENCE header where a session starts

    # another key opens nothing; the right key opens the session with that ID
    right = AESGCM(store_keys(bytes(range(64)))[0])
    wrong = AESGCM(store_keys(b"\x01" * 64)[0])
    assert unseal(wrong, name, value) is None
    der = unseal(right, name, value)
    assert der is not None and session_id in der
    # under another name (moved to another session's entry) it does not open either
    assert unseal(right, b"test:" + b"0" * 64, value) is None

    # a node with another key cannot resume the session: a full handshake, the login works
    other_key = tmp_path / "other.key"
    other_key.write_bytes(b"\x01" * 64)
    (stranger,) = nodes(NODE.replace("$store_key", str(other_key)), count=1)
    assert not imaps_login(stranger.address("imaps"), ctx, ALICE, login.session).reused
    assert imaps_login(two.address("imaps"), ctx, ALICE, login.session).reused


def test_a_changed_value_is_a_full_handshake(pki, nodes, redis_server):
    one, two = nodes()
    ctx = client_context(pki, version=TLS12)
    login = imaps_login(one.address("imaps"), ctx, ALICE)
    wait_stored(redis_server)
    client = redis_server.client()
    (name,) = client.keys("*")
    value = bytearray(client.get(name))
    value[-1] ^= 1
    client.set(name, bytes(value))
    assert not imaps_login(two.address("imaps"), ctx, ALICE, login.session).reused


def _store_warnings(node) -> list[str]:
    return [line for line in node.log_lines("warn") if "ssl_session_store" in line]


def test_redis_down_then_back(pki, nodes, redis_server):
    one, two = nodes()
    ctx = client_context(pki, version=TLS12)
    session = imaps_login(one.address("imaps"), ctx, ALICE).session
    wait_stored(redis_server)

    redis_server.stop()
    for i in range(6):
        node = (two, one)[i % 2]
        login = imaps_login(node.address("imaps"), ctx, ALICE, session)
        assert not login.reused
        session = login.session
    for node in (one, two):
        warnings = _store_warnings(node)
        assert len(warnings) == 1, warnings
        assert f'ssl_session_store "redis://127.0.0.1:{redis_server.port}/0" failed' in warnings[0]

    redis_server.start()
    time.sleep(RETRY_AFTER + 0.2)  # each worker leaves a failed store alone this long
    session = imaps_login(one.address("imaps"), ctx, ALICE).session
    wait_stored(redis_server)
    assert imaps_login(two.address("imaps"), ctx, ALICE, session).reused


def test_a_stalled_redis_is_a_full_handshake_after_the_timeout(pki, nodes, redis_server):
    one, two = nodes()
    ctx = client_context(pki, version=TLS12)
    session = imaps_login(one.address("imaps"), ctx, ALICE).session
    wait_stored(redis_server)
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        assert not imaps_login(two.address("imaps"), ctx, ALICE, session).reused
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    (warning,) = _store_warnings(two)
    assert "(timed out)" in warning


def test_a_password_protected_redis(tmp_path, pki, port_allocator, embedded_factory,
                                    auth_server, dovecot):
    require("redis-server")
    redis_server = RedisServer(tmp_path / "redis", port_allocator, password="s3cret-pw")
    redis_server.start()
    key = tmp_path / "store.key"
    key.write_bytes(bytes(range(64)))
    try:
        made = []
        for url in (redis_server.url, redis_server.url.replace("s3cret-pw", "wrong-pw")):
            node = embedded_factory()
            node.values.update(redis=url, store_key=key)
            made.append(node.start(NODE))
        good, refused = made
        ctx = client_context(pki, version=TLS12)
        login = imaps_login(good.address("imaps"), ctx, ALICE)
        wait_stored(redis_server)
        # the node with the wrong password: full handshakes, a warning without the password
        assert not imaps_login(refused.address("imaps"), ctx, ALICE, login.session).reused
        (warning,) = _store_warnings(refused)
        assert "pw" not in warning and "redis://127.0.0.1:%d/0" % redis_server.port in warning
        assert "s3cret" not in good.error_log() + refused.error_log()
    finally:
        redis_server.stop()


def test_a_paused_handshake_blocks_no_one(pki, nodes, redis_server):
    # Redis stalled: a resumption waits for it (timeout 5 s here) while the same worker
    # serves a new client through its whole login; Redis back, the waiting one resumes
    one, two = nodes(NODE.replace("timeout=500ms", "timeout=5s"))
    ctx = client_context(pki, version=TLS12)
    session = imaps_login(one.address("imaps"), ctx, ALICE).session
    wait_stored(redis_server)
    results: list = []
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        waiting = threading.Thread(target=lambda: results.append(
            imaps_login(two.address("imaps"), ctx, ALICE, session)))
        waiting.start()
        assert wait_until(lambda: "client 127.0.0.1" in two.error_log(), 5)
        assert not imaps_login(two.address("imaps"), ctx, ALICE).reused
        assert waiting.is_alive() and results == []
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    waiting.join(10)
    assert results[0].reused
    assert _store_warnings(two) == []
