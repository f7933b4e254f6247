"""Session resumption: the session cache modes, the shared zone across worker
processes, ticket keys (files, rotation, refusal, shared automatic keys),
expiry and the TLS 1.3 lifetime clamp."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time

import pytest
from mailgate.tls import SessionZones, build_contexts

from tests.support.clients import client_context
from tests.support.components import NGINX, NGINX_MAIL_MODULE, require
from tests.support.configs import certificates, mail_text, server_block
from tests.tls.clients import handshake_session, memory_handshake
from tests.tls.conf import context, load

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
NO_TICKETS = "ssl_session_tickets off;"
SHARED = "ssl_session_cache shared:SSL:1m;"


def resumed(port, ctx, session) -> bool:
    facts, _ = handshake_session(port, ctx, session)
    return facts["reused"]


EXPIRY = 3  # ssl_session_timeout of the expiry tests: long enough for a loaded machine


def assert_expires(issuer, resumer, client) -> None:
    """A session of ``issuer`` resumes at ``resumer``, and no more once the
    ssl_session_timeout of EXPIRY seconds has passed."""
    _, session = handshake_session(issuer.port, client)
    assert resumed(resumer.port, client, session)
    time.sleep(EXPIRY + 1.1)
    assert not resumed(resumer.port, client, session)


def ticket_key(path, size: int) -> str:
    path.write_bytes(os.urandom(size))
    return str(path)


# ---- ssl_session_cache modes, one process ----------------------------------------

def test_cache_off_sends_no_session_id(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, "ssl_session_cache off;" + NO_TICKETS))
    ctx = client_context(pki, version=TLS12)
    _, session = handshake_session(srv.port, ctx)
    assert session.id == b""
    assert not resumed(srv.port, ctx, session)


def test_cache_none_sends_an_id_but_never_resumes(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, "ssl_session_cache none;" + NO_TICKETS))
    ctx = client_context(pki, version=TLS12)
    _, session = handshake_session(srv.port, ctx)
    assert len(session.id) == 32
    assert not resumed(srv.port, ctx, session)


@pytest.mark.parametrize("version", [TLS12, TLS13])
def test_builtin_cache_resumes(tmp_path, pki, serve, version):
    srv = serve(main=context(tmp_path, pki, "ssl_session_cache builtin;" + NO_TICKETS))
    ctx = client_context(pki, version=version)
    _, session = handshake_session(srv.port, ctx)
    assert resumed(srv.port, ctx, session)


def test_builtin_cache_size(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, "ssl_session_cache builtin:1;" + NO_TICKETS))
    ctx = client_context(pki, version=TLS12)
    _, first = handshake_session(srv.port, ctx)
    _, second = handshake_session(srv.port, ctx)
    assert resumed(srv.port, ctx, second)
    assert not resumed(srv.port, ctx, first)  # pushed out by the second


def test_default_resumes_by_ticket(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki))
    for version in (TLS12, TLS13):
        ctx = client_context(pki, version=version)
        _, session = handshake_session(srv.port, ctx)
        assert session.has_ticket
        assert resumed(srv.port, ctx, session)


def test_tickets_off_and_no_cache_never_resume(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, NO_TICKETS))
    for version in (TLS12, TLS13):
        ctx = client_context(pki, version=version)
        _, session = handshake_session(srv.port, ctx)
        # (TLS 1.3 still sends a ticket: the session ID of a stateful session)
        assert session.has_ticket == (version == TLS13)
        assert not resumed(srv.port, ctx, session)


# ---- the shared zone across worker processes ------------------------------------------

@pytest.mark.parametrize("version", [TLS12, TLS13])
def test_shared_cache_resumes_in_another_worker(tmp_path, pki, workers, version):
    zones = SessionZones()
    ctx = context(tmp_path, pki, SHARED + NO_TICKETS, zones=zones)
    a, b = workers(main=ctx), workers(main=ctx)
    client = client_context(pki, version=version)
    facts, session = handshake_session(a.port, client)
    facts_b, _ = handshake_session(b.port, client, session)
    assert facts_b["reused"] and facts_b["pid"] != facts["pid"]
    stats = zones["SSL"].stats()
    assert stats.stored >= 1 and stats.hits >= 1


def test_shared_cache_with_builtin_cache(tmp_path, pki, workers):
    ctx = context(tmp_path, pki, "ssl_session_cache builtin:100 shared:SSL:1m;" + NO_TICKETS)
    a, b = workers(main=ctx), workers(main=ctx)
    client = client_context(pki, version=TLS12)
    _, session = handshake_session(a.port, client)
    assert resumed(b.port, client, session)


def test_shared_zone_inherited_by_a_server_with_builtin(tmp_path, pki, workers):
    # the shared zone of mail{} stays even where the server sets "builtin"
    ctx = context(tmp_path, pki, "ssl_session_cache builtin;" + NO_TICKETS, mail=SHARED)
    assert ctx.session_zone is not None and ctx.session_zone.name == "SSL"
    a, b = workers(main=ctx), workers(main=ctx)
    client = client_context(pki, version=TLS12)
    _, session = handshake_session(a.port, client)
    assert resumed(b.port, client, session)


def test_tls13_sessions_with_tickets_are_not_stored(tmp_path, pki, serve):
    zones = SessionZones()
    srv = serve(main=context(tmp_path, pki, SHARED, zones=zones))
    client = client_context(pki, version=TLS13)
    _, session = handshake_session(srv.port, client)
    assert resumed(srv.port, client, session)  # by ticket
    assert zones["SSL"].stats().stored == 0


def test_shared_zone_keeps_automatic_ticket_keys(tmp_path, pki, workers):
    """Without key files, two workers of one master share ticket keys through
    the zone; two masters with their own zones do not."""
    zones = SessionZones()
    ctx = context(tmp_path, pki, SHARED, zones=zones)
    a, b = workers(main=ctx), workers(main=ctx)
    for version in (TLS12, TLS13):
        client = client_context(pki, version=version)
        _, session = handshake_session(a.port, client)
        assert resumed(b.port, client, session)
    assert zones["SSL"].stats().stored == 0  # TLS 1.2 tickets: stateless

    # contexts and zones made in each process: nothing shared
    c = workers(build=lambda: {"main": context(tmp_path / "c", pki, SHARED)})
    d = workers(build=lambda: {"main": context(tmp_path / "d", pki, SHARED)})
    client = client_context(pki, version=TLS12)
    _, session = handshake_session(c.port, client)
    assert not resumed(d.port, client, session)


def test_session_id_context_separates_servers(tmp_path, pki, workers):
    """Two servers sharing a zone but not their certificates do not resume
    each other's sessions."""
    config = load(
        tmp_path,
        certificates(pki, "ecdsa") + NO_TICKETS,
        certificates(pki, "other") + NO_TICKETS,
        mail=SHARED,
    )
    zones = SessionZones()
    zones.configure(config)
    first, second = build_contexts(config, zones)
    a, b = workers(main=first), workers(main=second)
    client = client_context(pki, version=TLS12)
    client.check_hostname = False
    _, session = handshake_session(a.port, client)
    assert not resumed(b.port, client, session)
    assert resumed(a.port, client, session)


def test_shared_cache_expiry(tmp_path, pki, workers):
    ctx = context(tmp_path, pki, SHARED + NO_TICKETS + "ssl_session_timeout %ds;" % EXPIRY)
    assert_expires(workers(main=ctx), workers(main=ctx), client_context(pki, version=TLS12))


def test_zone_and_sessions_survive_a_reload(tmp_path, pki, workers):
    zones = SessionZones()
    old = context(tmp_path / "old", pki, SHARED + NO_TICKETS, zones=zones)
    zone = zones["SSL"]
    client = client_context(pki, version=TLS12)
    _, session = handshake_session(workers(main=old).port, client)
    new = context(tmp_path / "new", pki, SHARED + NO_TICKETS, zones=zones)  # same name and size
    assert zones["SSL"] is zone and new.session_zone is zone
    assert resumed(workers(main=new).port, client, session)

    context(tmp_path / "bigger", pki, "ssl_session_cache shared:SSL:2m;", zones=zones)
    assert zones["SSL"] is not zone and zones["SSL"].size == 2 * 1024 * 1024


# ---- ticket key files ----------------------------------------------------------------

@pytest.mark.parametrize("size", [48, 80])
@pytest.mark.parametrize("version", [TLS12, TLS13])
def test_ticket_key_file_shared_by_processes(tmp_path, pki, workers, size, version):
    key = ticket_key(tmp_path / "ticket.key", size)
    body = f"ssl_session_ticket_key {key};"

    def build(name):
        return lambda: {"main": context(tmp_path / name, pki, body)}

    a, b = workers(build=build("a")), workers(build=build("b"))
    client = client_context(pki, version=version)
    _, session = handshake_session(a.port, client)
    assert resumed(b.port, client, session)


def test_ticket_key_rotation(tmp_path, pki, workers):
    old = ticket_key(tmp_path / "old.key", 80)
    new = ticket_key(tmp_path / "new.key", 48)

    def build(*keys):
        body = "".join(f"ssl_session_ticket_key {k};" for k in keys)
        return lambda: {"main": context(tmp_path / str(len(keys)) / keys[0][-7:], pki, body)}

    only_old = workers(build=build(old))
    new_and_old = workers(build=build(new, old))
    only_new = workers(build=build(new))

    client = client_context(pki, version=TLS12)
    _, from_old = handshake_session(only_old.port, client)
    # the first key encrypts, all decrypt; a ticket of an older key is renewed
    facts, renewed = handshake_session(new_and_old.port, client, from_old)
    assert facts["reused"]
    assert resumed(only_new.port, client, renewed)
    # a ticket whose key is gone is ignored: full handshake
    assert not resumed(only_new.port, client, from_old)


def test_ticket_expiry(tmp_path, pki, serve):
    key = ticket_key(tmp_path / "ticket.key", 80)
    srv = serve(main=context(tmp_path, pki, f"ssl_session_ticket_key {key}; ssl_session_timeout {EXPIRY}s;"))
    assert_expires(srv, srv, client_context(pki, version=TLS12))


def test_tls13_lifetime_is_not_extended_by_resumption(tmp_path, pki, serve):
    """A resumed TLS 1.3 session keeps its original end of life.

    OpenSSL would give the ticket issued at the resumption a fresh timeout
    (valid until about t0 + 6.5 s here); the clamp leaves what remained of
    the first one (until t0 + 4 s, or t0 + 5 s with whole seconds)."""
    srv = serve(main=context(tmp_path, pki, "ssl_session_timeout 4s;"))
    client = client_context(pki, version=TLS13)
    _, first = handshake_session(srv.port, client)
    time.sleep(2.5)
    facts, second = handshake_session(srv.port, client, first)
    assert facts["reused"]
    time.sleep(3.1)
    assert not resumed(srv.port, client, second)


@pytest.mark.nginx
@pytest.mark.parametrize("size", [48, 80])
def test_tickets_interoperate_with_nginx(tmp_path, pki, serve, size):
    """The key file layouts are nginx's: a ticket nginx issued resumes here
    and the other way round."""
    require("nginx")
    key = ticket_key(tmp_path / "ticket.key", size)
    port = _free_port()
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(mail_text(
        server_block(certificates(pki, "ecdsa") + f"ssl_protocols TLSv1.2; ssl_session_ticket_key {key};",
                     listen=f"127.0.0.1:{port} ssl"),
        main="events {}\npid nginx.pid;\nerror_log logs/error.log info;"))
    nginx = [NGINX, "-p", f"{tmp_path}/", "-c", "nginx.conf",
             "-g", f"load_module {NGINX_MAIL_MODULE};"]
    subprocess.run(nginx, check=True, capture_output=True)
    try:
        srv = serve(main=context(tmp_path / "mg", pki, f"ssl_protocols TLSv1.2; ssl_session_ticket_key {key};"))
        client = client_context(pki, version=TLS12)
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                client.wrap_socket(raw, server_hostname="mx.test") as tls:
            tls.recv(100)
            from_nginx = tls.session
        assert resumed(srv.port, client, from_nginx)
        _, from_mailgate = handshake_session(srv.port, client)
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                client.wrap_socket(raw, server_hostname="mx.test", session=from_mailgate) as tls:
            tls.recv(100)
            assert tls.session_reused
    finally:
        subprocess.run([*nginx, "-s", "stop"], capture_output=True, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- a full zone ----------------------------------------------------------------------

def test_full_zone_warns_once_per_second(tmp_path, pki):
    """The smallest zone fills with plain sessions; then sessions carrying a
    client certificate (several chunks) cannot be stored even after the
    oldest entry is dropped: nginx's warning, at most once a second."""
    zones = SessionZones()
    ctx = context(
        tmp_path, pki,
        "ssl_session_cache shared:TINY:32k;" + NO_TICKETS
        + f"ssl_verify_client optional; ssl_client_certificate {pki.ca.cert};",
        zones=zones,
    )
    zone = zones["TINY"]
    plain = client_context(pki, version=TLS12)
    for _ in range(zone.stats().capacity + 5):
        server, _ = memory_handshake(ctx, plain)
        server.close()
    assert zone.stats().count == zone.stats().capacity

    with_cert = client_context(pki, version=TLS12, client_cert=pki.client)
    warnings = []
    time.sleep(1.0 - time.time() % 1.0 + 0.05)  # early in a second: the three fit in it
    for _ in range(3):
        server, _ = memory_handshake(ctx, with_cert, log=lambda *line: warnings.append(line))
        server.close()
    assert warnings == [("warn", 'could not allocate new session in SSL session shared cache "TINY"')]
    assert zone.stats().failed == 3
