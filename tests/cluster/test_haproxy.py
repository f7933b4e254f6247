"""The deployment of docs/deployment.md on loopback, every part real: redis-server and
HAProxy (TCP mode, send-proxy-v2, round-robin), two mailgate nodes (separate master
processes, one configuration each), Dovecot behind.  TLS sessions resume whichever node
HAProxy picks; both nodes see the real client address; Redis stopped costs full
handshakes, never a login, and one warning.

HAProxy checks each node's ``/healthz`` on its ``status_listen`` port, as
docs/deployment.md does: a node sent QUIT leaves the rotation with no failed login.
"""

from __future__ import annotations

import signal
import ssl
import threading
import time

import pytest

from mailgate.proxy.session_store import RETRY_AFTER
from tests.cluster.helpers import imaps_login, wait_stored
from tests.support.clients import client_context
from tests.support.components import require
from tests.support.haproxy import HAProxy
from tests.support.redis_server import RedisServer
from tests.support.users import ALICE

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
CLIENT = "127.0.0.7"  # the client's own loopback address: HAProxy connects from 127.0.0.1
ROUNDS = 20

NODE = """
    auth_http $auth_http;
    set_real_ip_from 127.0.0.1;
    ssl_certificate $rsa_cert; ssl_certificate_key $rsa_key;
    ssl_session_cache shared:SSL:1m;
    $tickets
    ssl_session_ticket_key $ticket_key;
    ssl_session_store $redis timeout=500ms;
    status_listen 127.0.0.1:${port_status};
    server { listen 127.0.0.1:${port_imaps} ssl proxy_protocol; protocol imap; }
"""

BACKEND = """
frontend imaps
    bind 127.0.0.1:${port_imaps}
    default_backend nodes

backend nodes
    balance roundrobin
    source 127.0.0.1
    option httpchk GET /healthz
    http-check expect status 200
    retries 3
    option redispatch 1
    default-server inter 300ms fall 1 rise 2 send-proxy-v2
    server node1 127.0.0.1:$node1 check port $status1
    server node2 127.0.0.1:$node2 check port $status2
"""


@pytest.fixture
def cluster(tmp_path, port_allocator, proxy_factory, auth_server, dovecot, pki):
    """(haproxy, [node1, node2], redis) with ``start(tickets=...)`` still to call."""
    require("redis-server")
    require("haproxy")
    redis = RedisServer(tmp_path / "redis", port_allocator)
    redis.start()
    haproxy = HAProxy(tmp_path / "haproxy", port_allocator)
    nodes = [proxy_factory("mailgate"), proxy_factory("mailgate")]

    def start(tickets: bool):
        for node in nodes:
            node.values.update(redis=redis.url, ticket_key=pki.ticket_key_80,
                               tickets="" if tickets else "ssl_session_tickets off;")
            node.start(NODE)
        haproxy.start(BACKEND, {"node1": nodes[0].port("imaps"), "node2": nodes[1].port("imaps"),
                                "status1": nodes[0].port("status"),
                                "status2": nodes[1].port("status")})
        return haproxy, nodes, redis

    yield start
    haproxy.stop()
    redis.stop()


def _sessions_from_client(node) -> int:
    """The logins a node logged for the real client (as the PROXY header gave it)."""
    return sum(1 for line in node.log_lines("info")
               if "client logged in" in line and f"client: {CLIENT}," in line)


def _resumptions(haproxy, ctx, rounds: int = ROUNDS, redis=None) -> list[bool]:
    """Whether each of ``rounds`` logins resumed the session of the login before it;
    with ``redis``, the first session is in Redis before the first resumption."""
    session = imaps_login(haproxy.address("imaps"), ctx, ALICE, source=CLIENT).session
    if redis is not None:
        wait_stored(redis)
    reused = []
    for _ in range(rounds):
        login = imaps_login(haproxy.address("imaps"), ctx, ALICE, session, source=CLIENT)
        reused.append(login.reused)
        session = login.session
    return reused


def test_tls12_session_ids_resume_on_either_node(cluster, pki):
    haproxy, nodes, redis = cluster(tickets=False)
    assert _resumptions(haproxy, client_context(pki, version=TLS12), redis=redis) == [True] * ROUNDS
    # round-robin: each node had half of the 21 sessions, and logged the real client
    for node in nodes:
        assert _sessions_from_client(node) >= ROUNDS // 2, node.error_log()
    assert redis.client().dbsize() >= 1


def test_tls13_tickets_resume_on_either_node_with_shared_key_files(cluster, pki):
    haproxy, nodes, redis = cluster(tickets=True)
    assert _resumptions(haproxy, client_context(pki, version=TLS13)) == [True] * ROUNDS
    for node in nodes:
        assert _sessions_from_client(node) >= ROUNDS // 2, node.error_log()
    assert redis.client().dbsize() == 0  # stateless: nothing to store


def test_redis_stopped_then_back(cluster, pki):
    haproxy, nodes, redis = cluster(tickets=False)
    ctx = client_context(pki, version=TLS12)
    assert all(_resumptions(haproxy, ctx, 4, redis))

    redis.stop()
    # every handshake is a full one now, and every login works
    assert _resumptions(haproxy, ctx, 10) == [False] * 10
    for node in nodes:
        warnings = [line for line in node.log_lines("warn") if "ssl_session_store" in line]
        assert len(warnings) == 1, warnings

    redis.start()
    time.sleep(RETRY_AFTER + 0.2)
    assert _resumptions(haproxy, ctx, 10, redis) == [True] * 10


def test_a_draining_node_leaves_the_rotation_with_no_failed_login(cluster, pki):
    haproxy, nodes, _ = cluster(tickets=True)
    ctx = client_context(pki, version=TLS13)
    failures: list[BaseException] = []
    logins = [0]
    stop = threading.Event()

    def log_in_again_and_again() -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                imaps_login(haproxy.address("imaps"), ctx, ALICE, source=CLIENT)
                logins[0] += 1
            except Exception as exc:  # any failed login is the finding
                failures.append(exc)

    client = threading.Thread(target=log_in_again_and_again)
    client.start()
    try:
        time.sleep(1)
        nodes[0].send_signal(signal.SIGQUIT)  # /healthz answers 503: HAProxy takes it out
        time.sleep(3)
        before = _sessions_from_client(nodes[1])
        time.sleep(1)
    finally:
        stop.set()
        client.join(35)
    assert not failures, failures
    assert logins[0] >= 10
    # after the drain, the logins went to the node left in the rotation
    assert _sessions_from_client(nodes[1]) > before
