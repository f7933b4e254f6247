"""First end-to-end checks of the embedded proxy with Dovecot, the SMTP backend and auth_http."""

import asyncio
import smtplib
import socket
import time

import pytest
from mailgate import Config
from mailgate.log import LogFiles
from mailgate.proxy.mailproxy import MailProxy

from tests.support.auth_http import Reply, SequencePolicy
from tests.support.clients import imap_fetch, imap_login, open_imap, open_pop3, open_smtp, pop3_retr
from tests.support.messages import DOT_MESSAGE
from tests.support.users import ALICE, BULK

MAIL = """
    server_name mx.test;
    auth_http $auth_http;
    ssl_certificate $rsa_cert; ssl_certificate_key $rsa_key;
    server { listen 127.0.0.1:${port_imap}; protocol imap; starttls on; }
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; starttls on; }
    server { listen 127.0.0.1:${port_smtp}; protocol smtp; starttls on; }
    server { listen 127.0.0.1:${port_smtpx}; protocol smtp; xclient off; smtp_auth none plain login; }
"""


def test_imap_fetch(embedded, dovecot):
    embedded.start(MAIL)
    for name, security in (("imap", "plain"), ("imap", "starttls"), ("imaps", "ssl")):
        with open_imap(*embedded.address(name), security=security) as imap:
            imap_login(imap, ALICE)
            imap.select("INBOX", readonly=True)
            assert imap_fetch(imap, "1") == dovecot.delivered("alice")[0].data
            imap.logout()


def test_pop3_retr(embedded, dovecot):
    embedded.start(MAIL)
    for security in ("plain", "starttls"):
        pop = open_pop3(*embedded.address("pop3"), security=security)
        pop.user(ALICE.login)
        pop.pass_(ALICE.password)
        assert pop3_retr(pop, 1) == dovecot.stored_bytes(dovecot.delivered("alice")[0])
        pop.quit()


def test_smtp_send(embedded, smtp_backend):
    embedded.start(MAIL)
    for security in ("plain", "starttls"):
        with open_smtp(*embedded.address("smtp"), security=security) as smtp:
            smtp.ehlo("client.example")
            smtp.login(ALICE.login, ALICE.password)
            smtp.sendmail("alice@example.com", ["bob@example.com"], DOT_MESSAGE)
    messages = smtp_backend.wait_for_messages(2)
    assert [m.data for m in messages] == [DOT_MESSAGE, DOT_MESSAGE]
    with smtplib.SMTP(*embedded.address("smtpx"), timeout=10) as smtp:
        smtp.ehlo("relay.example")
        smtp.sendmail("a@example.com", ["bob@example.com"], DOT_MESSAGE)
    assert smtp_backend.wait_for_messages(3)[2].data == DOT_MESSAGE


def test_login_failure_and_wait(embedded, dovecot, auth_server):
    embedded.start(MAIL)
    auth_server.policy = SequencePolicy(
        [Reply([("Auth-Status", "Invalid login or password"), ("Auth-Wait", "1")])],
        then=auth_server.policy)
    with open_imap(*embedded.address("imap")) as imap:
        started = time.monotonic()
        try:
            imap.login(ALICE.login, "wrong")
        except imap.error as exc:
            assert "Invalid login or password" in str(exc)
        assert time.monotonic() - started >= 0.9
        imap_login(imap, ALICE)
        imap.logout()


def test_bulk_fetch(embedded, dovecot):
    embedded.start(MAIL)
    with open_imap(*embedded.address("imaps"), security="ssl") as imap:
        imap_login(imap, BULK)
        imap.select("INBOX", readonly=True)
        started = time.monotonic()
        data = imap_fetch(imap, "1")
        elapsed = time.monotonic() - started
        assert data == dovecot.delivered("bulk")[0].data
        imap.logout()
    print("10 MB over TLS in %.3f s" % elapsed)


def _nodelay_in_relay(embedded, name: str) -> list[int]:
    """TCP_NODELAY of the client and the backend socket of a session in the relay."""
    with open_imap(*embedded.address(name), security="plain") as imap:
        imap_login(imap, ALICE)
        imap.select("INBOX", readonly=True)

        async def nodelay():
            (session,) = embedded.proxy.sessions
            return [t.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                    for t in (session.transport, session.backend.transport)]

        values = embedded.call(nodelay())
        imap.logout()
    return values


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_both_connections_of_a_session_send_without_delay(loop, embedded_factory, dovecot):
    """Greetings and commands leave at once: TCP_NODELAY on the client and the backend side."""
    factory = asyncio.new_event_loop if loop == "asyncio" else pytest.importorskip("uvloop").new_event_loop
    embedded = embedded_factory(loop_factory=factory)
    embedded.start(MAIL)
    assert _nodelay_in_relay(embedded, "imap") == [1, 1]


def test_a_listening_socket_from_the_embedder_gets_nodelay_too(embedded, dovecot, proxy_values):
    sock = socket.socket()  # protocol 0: asyncio's loop leaves Nagle's algorithm on for it
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    embedded.named_ports["given"] = sock.getsockname()[1]
    text = "mail { auth_http %s; server { listen 127.0.0.1:%d; protocol imap; } }" % (
        proxy_values["auth_http"], embedded.named_ports["given"])
    config = Config.from_string(text, prefix=str(embedded.directory))

    async def start():
        embedded.proxy = MailProxy(config, sockets=[sock], log_files=LogFiles())
        await embedded.proxy.start()

    embedded.call(start())
    assert _nodelay_in_relay(embedded, "given") == [1, 1]


def test_a_wildcard_listen_routes_by_local_address(embedded, proxy_values):
    """nginx binds only the wildcard of a port and answers each connection with the
    server of its local address (getsockname()), the wildcard's own otherwise.  Tests
    listen on loopback only: the wildcard's socket is handed in bound to 127.0.0.1."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    port = embedded.named_ports["any"] = sock.getsockname()[1]
    text = """mail { auth_http %s;
        server { listen 0.0.0.0:%d; protocol imap; }
        server { listen 127.0.0.1:%d; protocol pop3; }
        server { listen 127.0.0.2:%d; protocol smtp; }
    }""" % (proxy_values["auth_http"], port, port, port)
    config = Config.from_string(text, prefix=str(embedded.directory))

    async def start():
        embedded.proxy = MailProxy(config, sockets=[sock], log_files=LogFiles())
        await embedded.proxy.start()

    embedded.call(start())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        assert client.recv(100) == b"+OK POP3 ready\r\n"

    class Transport:  # a connection that arrived on another local address
        def __init__(self, sockname):
            self.sockname = sockname

        def get_extra_info(self, name):
            assert name == "sockname"
            return self.sockname

    (listener,) = embedded.proxy.listeners
    routed = {address: listener.route(Transport((address, port))).config.protocol
              for address in ("127.0.0.1", "127.0.0.2", "127.0.0.3")}
    assert routed == {"127.0.0.1": "pop3", "127.0.0.2": "smtp", "127.0.0.3": "imap"}
