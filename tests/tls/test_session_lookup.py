"""The external session store's hook in ``TLSStream`` (``ssl_session_store``): which
ClientHellos pause the handshake (``SessionLookup``), what ``resume_session()`` does
with the answer, and which sessions ``new_sessions()`` hands over.

The store here is the caller's dict, as the TLS layer sees any store; Redis itself is
tested in tests/cluster/."""

from __future__ import annotations

import ssl

import pytest
from mailgate.tls import SessionLookup, SessionZones, TLSStream

from tests.support.clients import client_context
from tests.support.memory import MemoryClient
from tests.tls.conf import context

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
STORE = "ssl_session_store redis://127.0.0.1; ssl_session_store_key $key; "
NO_TICKETS = "ssl_session_tickets off; "


class Handshake:
    """An in-memory handshake whose lookups are answered by ``answer(session_id)``;
    the new sessions go into ``store``."""

    def __init__(self, server_ctx, client_ctx, store: dict, *, session=None, answer=None,
                 feed_while_paused: bytes = b""):
        answer = answer or store.get
        self.lookups: list[bytes] = []
        self.server = TLSStream(server_ctx)
        client = MemoryClient(client_ctx, session=session)
        done_client = done_server = False
        for _ in range(20):
            done_client = client.handshake_step()
            data = client.outgoing.read()
            if data:
                self.server.feed(data)
            if not done_server:
                try:
                    done_server = self.server.do_handshake()
                except SessionLookup as lookup:
                    self.lookups.append(lookup.session_id)
                    if feed_while_paused:
                        # bytes that come while the store is asked: kept, no second lookup
                        assert self.server.do_handshake() is False
                    self.server.resume_session(answer(lookup.session_id))
                    done_server = self.server.do_handshake()
            out = self.server.data_to_send()
            if out:
                client.incoming.write(bytes(out))
            if done_client and done_server and not out and not data:
                break
        assert done_client and done_server, "in-memory handshake did not finish"
        client.read_all()
        self.client = client.obj
        self.new = self.server.new_sessions()
        store.update(self.new)

    @property
    def reused(self) -> bool:
        assert self.client.session_reused == self.server.session_reused
        return self.server.session_reused


@pytest.fixture
def node(tmp_path, pki):
    """make(body) -> a server context with the store; each call is another node."""
    key = tmp_path / "store.key"
    key.write_bytes(b"k" * 32)
    count = iter(range(100))

    def make(body: str = NO_TICKETS, zones: SessionZones | None = None):
        directory = tmp_path / f"node{next(count)}"
        directory.mkdir()
        return context(directory, pki, (STORE + body).replace("$key", str(key)), zones=zones)

    return make


@pytest.mark.parametrize("version", [TLS12, TLS13])
def test_a_session_of_one_node_resumes_on_another(pki, node, version):
    store: dict = {}
    client = client_context(pki, version=version)
    first = Handshake(node(), client, store)
    assert first.lookups == [] and not first.reused
    assert len(first.new) >= 1
    ids = [session_id for session_id, _ in first.new]

    other = Handshake(node(), client, store, session=first.client.session)
    # TLS 1.2: the session ID; TLS 1.3: the ticket's identity, the server's session ID
    assert len(other.lookups) == 1 and other.lookups[0] in ids
    if version == TLS12:
        assert other.lookups == [first.client.session.id]
    assert other.reused


def test_a_miss_is_a_full_handshake(pki, node):
    store: dict = {}
    client = client_context(pki, version=TLS12)
    first = Handshake(node(), client, store)
    again = Handshake(node(), client, {}, session=first.client.session)
    assert again.lookups == [first.client.session.id]
    assert not again.reused
    assert len(again.new) == 1  # the full handshake's new session, to be stored


@pytest.mark.parametrize("answer", [
    b"", b"\x30\x82garbage", b"x" * 5000,
    "another session",  # a valid session, but not the one asked for
])
def test_an_unusable_answer_is_a_full_handshake(pki, node, answer):
    store: dict = {}
    client = client_context(pki, version=TLS12)
    first = Handshake(node(), client, store)
    second = Handshake(node(), client, store)
    if answer == "another session":
        answer = dict(second.new)[second.client.session.id]
    again = Handshake(node(), client, store, session=first.client.session,
                      answer=lambda session_id: answer)
    assert again.lookups and not again.reused


def test_bytes_while_paused_wait_for_the_answer(pki, node):
    store: dict = {}
    client = client_context(pki, version=TLS12)
    first = Handshake(node(), client, store)
    again = Handshake(node(), client, store, session=first.client.session, feed_while_paused=b"x")
    assert len(again.lookups) == 1 and again.reused


def test_a_new_tls13_client_is_not_looked_up(pki, node):
    # a TLS 1.3 ClientHello carries a random legacy session ID (RFC 8446 appendix D.4)
    first = Handshake(node(), client_context(pki, version=TLS13), {})
    assert first.lookups == []


def test_tickets_are_not_looked_up(pki, node):
    store: dict = {}
    ctx = node("ssl_session_ticket_key $ticket;".replace("$ticket", str(pki.ticket_key_80)))
    for version in (TLS12, TLS13):
        client = client_context(pki, version=version)
        first = Handshake(ctx, client, store)
        again = Handshake(ctx, client, store, session=first.client.session)
        assert again.lookups == [] and again.reused
    # nothing to store: TLS 1.3 tickets are stateless, and a TLS 1.2 session that goes
    # into a ticket has no session ID (RFC 5077 section 3.4)
    assert store == {}


def test_the_shared_zone_answers_first(pki, node):
    # another context of the node (another worker) resumes from the zone, Redis unasked
    store: dict = {}
    client = client_context(pki, version=TLS12)
    zones = SessionZones()
    shared = NO_TICKETS + "ssl_session_cache shared:SSL:1m;"
    one, two = node(shared, zones), node(shared, zones)
    first = Handshake(one, client, store)
    again = Handshake(two, client, {}, session=first.client.session)
    assert again.lookups == [] and again.reused
    zones.close()


def test_the_builtin_cache_is_asked_after_the_store(pki, node):
    # OpenSSL's builtin cache cannot be asked from the ClientHello callback: the store is
    # asked first, and the session resumes from either
    client = client_context(pki, version=TLS12)
    ctx = node(NO_TICKETS + "ssl_session_cache builtin;")
    first = Handshake(ctx, client, {})
    again = Handshake(ctx, client, {}, session=first.client.session)
    assert again.lookups == [first.client.session.id] and again.reused


def test_no_store_with_the_cache_off(pki, node):
    ctx = node(NO_TICKETS + "ssl_session_cache off;")
    assert ctx.session_store is None
    first = Handshake(ctx, client_context(pki, version=TLS12), {})
    assert first.new == [] and first.lookups == []
