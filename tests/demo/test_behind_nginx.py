"""The demo server as the backend of Debian's nginx mail proxy.

nginx logs in to its backend its own way (IMAP LOGIN with synchronizing literals,
POP3 USER/PASS, SMTP EHLO + XCLIENT with a fresh 220 greeting expected), which
is what mailgate reproduces; the demo server must accept every step of it.
"""

from __future__ import annotations

import http.server
import imaplib
import poplib
import smtplib
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

from tests.demo.helpers import PASSWORD, SIMPLE, ServerThread, make_store
from tests.support.components import NGINX_MAIL_MODULE

pytestmark = [pytest.mark.nginx, pytest.mark.requires("nginx")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AuthHandler(http.server.BaseHTTPRequestHandler):
    """nginx's auth_http: check the password in the store, point at the demo backend."""

    def do_GET(self):
        user = urllib.parse.unquote(self.headers["Auth-User"])
        password = urllib.parse.unquote(self.headers["Auth-Pass"])
        self.send_response(200)
        if self.server.store.check_password(user, password):
            port = self.server.backend_ports[self.headers["Auth-Protocol"]]
            self.send_header("Auth-Status", "OK")
            self.send_header("Auth-Server", "127.0.0.1")
            self.send_header("Auth-Port", str(port))
        else:
            self.send_header("Auth-Status", "Invalid login or password")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def nginx(tmp_path):
    backend = ServerThread(make_store())
    auth = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AuthHandler)
    auth.store, auth.backend_ports = backend.store, backend.ports
    threading.Thread(target=auth.serve_forever, daemon=True).start()
    ports = {name: free_port() for name in ("imap", "pop3", "smtp")}
    (tmp_path / "nginx.conf").write_text(f"""
        load_module {NGINX_MAIL_MODULE};
        daemon off;
        master_process off;
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log info;
        events {{ }}
        mail {{
            auth_http 127.0.0.1:{auth.server_address[1]}/auth;
            server_name mx.test;
            server {{ listen 127.0.0.1:{ports['imap']}; protocol imap; }}
            server {{ listen 127.0.0.1:{ports['pop3']}; protocol pop3; }}
            server {{ listen 127.0.0.1:{ports['smtp']}; protocol smtp;
                     smtp_auth login plain; xclient on; }}
        }}
    """)
    proc = subprocess.Popen(["nginx", "-p", f"{tmp_path}/", "-c", f"{tmp_path}/nginx.conf",
                             "-e", f"{tmp_path}/error.log"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", ports["smtp"]), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("nginx did not start: " + proc.stderr.read().decode())
                time.sleep(0.02)
        yield ports, backend.store
    finally:
        proc.terminate()
        proc.wait(10)
        auth.shutdown()
        backend.stop()


def test_imap_pop3_smtp_through_nginx(nginx):
    ports, store = nginx
    client = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)
    assert client.login("alice", PASSWORD)[0] == "OK"     # the backend got LOGIN {5} ...
    client.select()
    assert client.fetch("1", "(BODY.PEEK[])")[1][0][1] == SIMPLE
    client.logout()

    client = poplib.POP3("127.0.0.1", ports["pop3"], timeout=10)
    client.user("alice")
    client.pass_(PASSWORD)
    assert b"\r\n".join(client.retr(1)[1]) + b"\r\n" == SIMPLE
    client.quit()

    message = b"Subject: via nginx\r\n\r\n.dot\r\nbare\nLF\r\n"
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as client:
        client.ehlo("client.example")
        client.login("bob", "builder")      # nginx: EHLO, XCLIENT ... LOGIN=bob, EHLO again
        assert client.sendmail("bob@example.com", ["alice@example.com"], message) == {}
    assert store.messages("alice")[-1] == message
