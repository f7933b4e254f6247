"""OAuth 2.0 log-ins end to end (mailgate's own, nginx lacks them): curl's
``--oauth2-bearer`` and imaplib's ``authenticate('XOAUTH2')`` as clients, the proxy's
auth_http deciding on the token, and Dovecot with its ``oauth2`` passdb introspecting
the token the proxy replays (RFC 7662 introspection at a small local HTTP endpoint).

The auth server here works as a production one would: it asks the same introspection
endpoint about the client's token and sends the session to Dovecot, optionally with a
token minted for the backend (``Auth-Pass``).
"""

from __future__ import annotations

import base64
import imaplib
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.gates import log_messages
from tests.support.auth_http import Reply
from tests.support.clients import curl, curl_url, open_imap
from tests.support.transcript import ReadLine, ReadTagged, run_script
from tests.support.users import ALICE

# a JWT-like token of 12 KB, as large providers issue them
BIG_TOKEN = "eyJhbGciOiJSUzI1NiJ9." + "Q" * (12 * 1024) + ".c2ln"
TOKENS = {"alice-token": "alice", "minted-for-dovecot": "alice", BIG_TOKEN: "alice"}

MAIL = """
    server_name mx.test;
    auth_http $auth_http;
    server { listen 127.0.0.1:${port_imap}; protocol imap;
             imap_auth plain xoauth2 oauthbearer; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3;
             pop3_auth plain xoauth2 oauthbearer; }
    server { listen 127.0.0.1:${port_smtp}; protocol smtp;
             smtp_auth login plain xoauth2 oauthbearer; }
"""


class _Introspection(BaseHTTPRequestHandler):
    """RFC 7662 token introspection: ``token=`` in a form POST; active or not."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        token = (form.get("token") or [""])[0]
        self.server.seen.append(token)
        user = TOKENS.get(token)
        body = json.dumps({"active": True, "username": user} if user else
                          {"active": False}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def introspection():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Introspection)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def oauth_dovecot(tmp_path_factory, port_allocator, introspection):
    """Dovecot taking XOAUTH2 and OAUTHBEARER, its oauth2 passdb introspecting."""
    from tests.support.dovecot import Dovecot
    from tests.support.components import require

    require("dovecot")
    directory = tmp_path_factory.mktemp("dovecot-oauth")
    conf = directory / "dovecot-oauth2.conf.ext"
    conf.write_text(
        f"introspection_url = http://127.0.0.1:{introspection.server_port}/introspect\n"
        "introspection_mode = post\n"
        "force_introspection = yes\n"
        "username_attribute = username\n"
        "active_attribute = active\n"
        "active_value = true\n")
    dovecot = Dovecot(directory, port_allocator,
                      settings={"auth_mechanisms": "plain login xoauth2 oauthbearer"},
                      extra=("passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                             f"  args = {conf}\n}}"))
    dovecot.start()
    yield dovecot
    dovecot.stop()


@pytest.fixture
def oauth_gate(sut_impl, proxy_factory, embedded_factory):
    """mailgate (the binary, or embedded): nginx has no OAuth 2.0."""
    return embedded_factory() if sut_impl == "embedded" else proxy_factory(sut_impl)


def oauth_policy(oauth_dovecot, smtp_backend, minted: bool = False, error=()):
    """A production-like auth server: the token must be known to the introspection
    endpoint; the session goes to Dovecot (or the SMTP backend)."""
    backends = {"imap": oauth_dovecot.imap_port, "pop3": oauth_dovecot.pop3_port,
                "smtp": smtp_backend.port if smtp_backend else 0}

    def policy(request):
        token = request.password
        if request.auth_method not in ("xoauth2", "oauthbearer") or TOKENS.get(token) != (
                request.login):
            return Reply([("Auth-Status", "Invalid token"), *error])
        headers = [("Auth-Status", "OK"), ("Auth-Server", "127.0.0.1"),
                   ("Auth-Port", backends[request.protocol])]
        if minted:
            headers.append(("Auth-Pass", "minted-for-dovecot"))
        return Reply(headers)

    return policy


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def test_imaplib_xoauth2_through_dovecot_oauth2(oauth_gate, oauth_dovecot, auth_server,
                                                introspection):
    auth_server.policy = oauth_policy(oauth_dovecot, None)
    oauth_gate.start(MAIL)
    with open_imap(*oauth_gate.address("imap")) as imap:
        typ, caps = imap.capability()
        assert b"AUTH=XOAUTH2" in caps[0] and b"AUTH=OAUTHBEARER" in caps[0]
        typ, _ = imap.authenticate("XOAUTH2", lambda _: xoauth2("alice", "alice-token"))
        assert typ == "OK"
        assert imap.select("INBOX", readonly=True)[0] == "OK"
    (request,) = auth_server.requests
    assert (request.auth_method, request.login, request.password) == (
        "xoauth2", "alice", "alice-token")
    # Dovecot checked the replayed token itself
    assert "alice-token" in introspection.seen
    assert not any("alice-token" in line for line in log_messages(oauth_gate))


@pytest.mark.requires("curl")
@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_curl_oauth2_bearer_imap_pop3_smtp(oauth_gate, oauth_dovecot, auth_server,
                                           smtp_backend, pki, mechanism):
    auth_server.policy = oauth_policy(oauth_dovecot, smtp_backend)
    # curl takes OAUTHBEARER when both are offered: each server offers one
    other = "oauthbearer" if mechanism == "XOAUTH2" else "xoauth2"
    oauth_gate.start(MAIL.replace(f" {other};", ";"))
    options = ["--oauth2-bearer", "alice-token"]
    user = ["--user", "alice:"]
    imap = curl(curl_url("imap", *oauth_gate.address("imap"), "INBOX"), pki=pki,
                extra=[*user, *options, "--request", "NOOP"])
    imap.check()
    pop3 = curl(curl_url("pop3", *oauth_gate.address("pop3")), pki=pki,
                extra=[*user, *options])
    pop3.check()
    smtp = curl(curl_url("smtp", *oauth_gate.address("smtp")), pki=pki,
                mail_from="alice@mx.test", mail_rcpt=["bob@mx.test"],
                upload=b"Subject: hi\r\n\r\nOAuth\r\n", extra=[*user, *options])
    smtp.check()
    methods = {(r.protocol, r.auth_method, r.login, r.password) for r in auth_server.requests}
    assert methods == {(p, mechanism.lower(), "alice", "alice-token")
                       for p in ("imap", "pop3", "smtp")}
    # SMTP's backend learns the user through XCLIENT LOGIN= (the token stays here)
    assert smtp_backend.messages()[-1].xclient["LOGIN"] == "alice"


def test_refused_token_gets_the_rfc7628_error_exchange(oauth_gate, oauth_dovecot,
                                                       auth_server):
    auth_server.policy = oauth_policy(oauth_dovecot, None, error=[
        ("Auth-Error-Status", "invalid_token"), ("Auth-Error-Scope", "mail")])
    oauth_gate.start(MAIL)
    response = base64.b64encode(b"n,a=alice,\x01auth=Bearer stale\x01\x01")
    transcript = run_script(oauth_gate.address("imap"), [
        ReadLine(), b"a1 AUTHENTICATE OAUTHBEARER " + response + b"\r\n", ReadLine(),
        b"AQ==\r\n", ReadTagged(b"a1")])
    lines = transcript.received.split(b"\r\n")
    assert lines[1].startswith(b"+ ")
    assert json.loads(base64.b64decode(lines[1][2:])) == {
        "status": "invalid_token", "schemes": "bearer", "scope": "mail"}
    assert lines[2] == b"a1 NO Invalid token"
    assert not any("stale" in line for line in log_messages(oauth_gate))


def test_malformed_requests_are_protocol_errors(oauth_gate, oauth_dovecot, auth_server):
    auth_server.policy = oauth_policy(oauth_dovecot, None)
    oauth_gate.start(MAIL)
    bad = [b"!!!!", base64.b64encode(b"user=alice\x01auth=Basic x\x01\x01"),
           base64.b64encode(b"user=alice\x01auth=Bearer alice-token")]
    script = [ReadLine()]
    for i, response in enumerate(bad):
        script += [b"a%d AUTHENTICATE XOAUTH2 %s\r\n" % (i, response), ReadTagged(b"a%d" % i)]
    script += [b"a9 AUTHENTICATE XOAUTH2\r\n", ReadLine(), b"x\x01y\r\n", ReadTagged(b"a9")]
    received = run_script(oauth_gate.address("imap"), script).received
    assert received.count(b" BAD invalid command\r\n") == 4
    assert auth_server.requests == []


def test_a_12_kb_token_with_a_token_minted_for_the_backend(oauth_gate, oauth_dovecot,
                                                          auth_server, introspection):
    auth_server.policy = oauth_policy(oauth_dovecot, None, minted=True)
    oauth_gate.start(MAIL)
    with open_imap(*oauth_gate.address("imap")) as imap:
        typ, _ = imap.authenticate("XOAUTH2", lambda _: xoauth2("alice", BIG_TOKEN))
        assert typ == "OK"
        assert imap.select("INBOX", readonly=True)[0] == "OK"
    assert auth_server.requests[-1].password == BIG_TOKEN
    assert introspection.seen[-1] == "minted-for-dovecot"
    # the other commands keep imap_client_buffer's limit
    long_login = b"a2 LOGIN alice " + b"x" * 5000 + b"\r\n"
    received = run_script(oauth_gate.address("imap"), [ReadLine(), long_login,
                                                        ReadLine()]).received
    assert received.endswith(b"\r\n") and b"a2 OK" not in received
    assert any("too long command" in line for line in log_messages(oauth_gate, "info"))


# -- README's example, run as written (addresses changed to the test's) -----------------

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_block(marker: str, language: str) -> str:
    block = README.read_text().split(f"<!-- {marker} -->", 1)[1]
    return re.search(rf"```{language}\n(.*?)```", block, re.S).group(1)


@pytest.mark.requires("curl")
def test_readme_oauth_example(oauth_gate, oauth_dovecot, introspection, port_allocator,
                              smtp_backend, pki):
    namespace: dict = {"__name__": "readme_oauth_example"}
    code = _readme_block("oauth-example-auth", "python")
    code = code.replace("https://idp.example.com/oauth2/introspect",
                        f"http://127.0.0.1:{introspection.server_port}/introspect")
    code = code.replace('("192.0.2.10", 143)', f'("127.0.0.1", {oauth_dovecot.imap_port})')
    code = code.replace('("192.0.2.10", 110)', f'("127.0.0.1", {oauth_dovecot.pop3_port})')
    code = code.replace('("192.0.2.11", 25)', f'("127.0.0.1", {smtp_backend.port})')
    exec(compile(code, "README.md", "exec"), namespace)
    auth = ThreadingHTTPServer(("127.0.0.1", 0), namespace["OAuthAuth"])
    threading.Thread(target=auth.serve_forever, daemon=True).start()
    try:
        config = _readme_block("oauth-example-config", "nginx")
        config = config.replace("127.0.0.1:9000", f"127.0.0.1:{auth.server_port}")
        for port, name in (("143", "imap"), ("110", "pop3"), ("587", "smtp")):
            config = config.replace(f"listen {port};", "listen 127.0.0.1:${port_%s};" % name)
        body = config.split("mail {", 1)[1].rsplit("}", 1)[0]
        oauth_gate.start(body)
        listing = curl(curl_url("imap", *oauth_gate.address("imap"), "INBOX"), pki=pki,
                       extra=["--user", "alice:", "--oauth2-bearer", "alice-token",
                              "--request", "NOOP"])
        listing.check()
        imap = open_imap(*oauth_gate.address("imap"))
        try:
            with pytest.raises(imaplib.IMAP4.error, match="Invalid token"):
                imap.authenticate("XOAUTH2", lambda _: xoauth2("alice", "stolen"))
        finally:
            imap.shutdown()     # the proxy closed after the failure
    finally:
        auth.shutdown()
        auth.server_close()
