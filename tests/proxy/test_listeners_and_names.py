"""Embedded proxy: IPv6 and unix-socket listeners, SMTP client names through the resolver."""

from __future__ import annotations

import imaplib
import smtplib
import socket

from tests.support.dns_server import DNSServer
from tests.support.clients import imap_fetch, imap_login
from tests.support.messages import make_message
from tests.support.users import ALICE


class UnixIMAP(imaplib.IMAP4):
    """imaplib over a unix socket."""

    def __init__(self, path: str):
        self.path = path
        super().__init__()

    def open(self, host="", port=0, timeout=None):
        self.host = host
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)
        self.file = self.sock.makefile("rb")


def test_ipv6_and_unix_listeners(embedded, dovecot, tmp_path):
    path = tmp_path / "imap.sock"
    embedded.start("""
        auth_http $auth_http;
        server { listen [::1]:${port_imap6}; protocol imap; }
        server { listen unix:%s; protocol imap; }
    """ % path)
    with imaplib.IMAP4("::1", embedded.named_ports["imap6"], timeout=10) as imap:
        imap_login(imap, ALICE)
        imap.select("INBOX", readonly=True)
        assert imap_fetch(imap, "1") == dovecot.delivered("alice")[0].data
    imap = UnixIMAP(str(path))
    imap_login(imap, ALICE)
    imap.select("INBOX", readonly=True)
    assert imap_fetch(imap, "1") == dovecot.delivered("alice")[0].data
    imap.logout()
    assert any("client unix: connected to unix:%s" % path in line for line in embedded.log_lines("info"))


def test_smtp_client_name_from_the_resolver(embedded, smtp_backend, auth_server):
    dns = DNSServer()
    embedded.call(dns.start())
    try:
        dns.ptr("127.0.0.1", "client.example.")
        dns.records("client.example.", "A", "127.0.0.1")
        embedded.start("""
            auth_http $auth_http;
            resolver 127.0.0.1:%d ipv6=off;
            server { listen 127.0.0.1:${port_smtp}; protocol smtp; }
        """ % dns.address[1])
        with smtplib.SMTP(*embedded.address("smtp"), timeout=10) as smtp:
            smtp.ehlo("helo.example")
            smtp.login(ALICE.login, ALICE.password)
            smtp.sendmail("alice@example.com", ["bob@example.com"], make_message("n", "b\r\n"))
        [request] = auth_server.requests
        assert request.header("Client-Host") == "client.example"
        [connection] = smtp_backend.connections()
        assert connection.xclient["NAME"] == "client.example"
    finally:
        embedded.call(dns.close())
