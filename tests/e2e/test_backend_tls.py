"""TLS to the backend (mailgate's ``proxy_ssl``, ``proxy_starttls``, ``proxy_ssl_*``, and the
auth answer's ``Auth-SSL-Backend``) with real backends: Dovecot with ``ssl = required``
on IMAPS/POP3S and on IMAP/POP3 with STARTTLS, the SMTP backend (aiosmtpd) requiring
STARTTLS or speaking SMTPS; real clients (imaplib, poplib, smtplib) on the proxy's plain
side.  Each protocol × {implicit, STARTTLS} × {the right CA, a wrong CA, a wrong name,
no TLS at the backend}; the session resumed on the second login; the STARTTLS
response-injection test against a fake backend per protocol; the per-answer override.

A failure gives the client the protocol's internal error (as for an unavailable
backend) and an ``[error]`` line saying why with the backend's address, never the
password (docs/differences.md#tls-to-backends)."""

from __future__ import annotations

import re
import select
import ssl
import threading

import pytest
from cryptography.hazmat.primitives import serialization

from tests.e2e.backends import Connection
from tests.e2e.scripts import INTERNAL_ERROR, PROTOCOLS, login_script
from tests.support.auth_http import DefaultPolicy
from tests.support.clients import imap_login, open_imap, open_pop3, open_smtp
from tests.support.components import require
from tests.support.dovecot import Dovecot
from tests.support.smtp_backend import SmtpBackend
from tests.support.transcript import ReadEOF, ReadLine, run_script
from tests.support.users import ALICE, DEFAULT_USERS

pytestmark = pytest.mark.requires("dovecot")

IMPLEMENTATIONS = ("mailgate", "embedded")

CONFIG = """
    auth_http $auth_http;
    error_log $prefix/error.log debug;
    server_name mx.test;
    %s
    server { listen 127.0.0.1:${port_imap}; protocol imap; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; }
    server { listen 127.0.0.1:${port_smtp}; protocol smtp; }
"""


@pytest.fixture(scope="module")
def tls_dovecot(tmp_path_factory, port_allocator, pki):
    """Dovecot requiring TLS: IMAPS/POP3S, and STARTTLS/STLS on IMAP/POP3."""
    require("dovecot")
    instance = Dovecot(tmp_path_factory.mktemp("dovecot-tls"), port_allocator, users=DEFAULT_USERS,
                       tls=(pki.server_rsa.cert, pki.server_rsa.key_file),
                       settings={"ssl": "required"})
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def smtp_backends(port_allocator, pki):
    """The SMTP backend requiring STARTTLS, and one speaking SMTPS."""
    tls = (str(pki.server_rsa.cert), str(pki.server_rsa.key_file))
    made = {"starttls": SmtpBackend(port_allocator, tls=tls),
            "on": SmtpBackend(port_allocator, tls=tls, implicit_tls=True)}
    for backend in made.values():
        backend.start()
    yield made
    for backend in made.values():
        backend.stop()


def backends(mode: str, dovecot, smtp) -> dict[str, tuple[str, int]]:
    """Where the auth server sends each protocol for a TLS ``mode``."""
    if mode == "on":
        return {"imap": (dovecot.host, dovecot.imaps_port), "pop3": (dovecot.host, dovecot.pop3s_port),
                "smtp": (smtp["on"].host, smtp["on"].port)}
    return {"imap": (dovecot.host, dovecot.imap_port), "pop3": (dovecot.host, dovecot.pop3_port),
            "smtp": (smtp["starttls"].host, smtp["starttls"].port)}


@pytest.fixture(params=IMPLEMENTATIONS)
def sut(request, proxy_factory, embedded_factory):
    return embedded_factory() if request.param == "embedded" else proxy_factory(request.param)


def verified(mode: str, pki, trusted=None, name: str = "mx.test") -> str:
    directive = "proxy_ssl on;" if mode == "on" else "proxy_starttls on;"
    return (f"{directive} proxy_ssl_verify on; proxy_ssl_verify_depth 2; "
            f"proxy_ssl_trusted_certificate {trusted or pki.ca.cert}; proxy_ssl_name {name};")


def log_in(protocol: str, address) -> None:
    """A whole session of a real client: log in, a command, log out."""
    if protocol == "imap":
        with open_imap(*address) as imap:
            imap_login(imap, ALICE)
            assert imap.select("INBOX", readonly=True)[0] == "OK"
    elif protocol == "pop3":
        client = open_pop3(*address)
        client.user(ALICE.login)
        client.pass_(ALICE.password)
        client.stat()
        client.quit()
    else:
        with open_smtp(*address) as client:
            client.ehlo()
            client.login(ALICE.login, ALICE.password)
            client.sendmail("alice@mx.test", ["bob@mx.test"], b"Subject: tls\r\n\r\nhi\r\n")


def failed_login(protocol: str, address) -> list[bytes]:
    """The replies to a login the backend side fails."""
    transcript = run_script(address, login_script(protocol, ALICE.login.encode(),
                                                  ALICE.password.encode()))
    return transcript.replies()


def error_lines(gate) -> list[str]:
    return [line for line in gate.log_lines("error") if "[error]" in line]


# -- the matrix ------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["on", "starttls"])
def test_verified_logins_and_resumed_session(sut, mode, tls_dovecot, smtp_backends, auth_server, pki):
    auth_server.policy = DefaultPolicy(DEFAULT_USERS, backends(mode, tls_dovecot, smtp_backends))
    sut.start(CONFIG % verified(mode, pki))
    for protocol in PROTOCOLS:
        for _ in range(2):
            log_in(protocol, sut.address(protocol))
    assert error_lines(sut) == []
    # the second login to each backend resumed the first one's session
    reused = [line for line in sut.log_lines("debug") if "SSL reused session" in line]
    for protocol, (host, port) in backends(mode, tls_dovecot, smtp_backends).items():
        assert any(f"upstream: {host}:{port}" in line for line in reused), protocol
    assert smtp_backends[mode].messages()[-1].data == b"Subject: tls\r\n\r\nhi\r\n"
    if mode == "starttls":
        # aiosmtpd records the connection anew after STARTTLS
        before, after = smtp_backends[mode].connections()[-2:]
        assert before.verbs() == ["EHLO", "STARTTLS"]
        assert after.verbs()[:3] == ["EHLO", "XCLIENT", "EHLO"]


@pytest.mark.parametrize("mode", ["on", "starttls"])
@pytest.mark.parametrize("case", ["wrong CA", "wrong name"])
def test_refused_certificate(sut, mode, case, tls_dovecot, smtp_backends, auth_server, pki):
    auth_server.policy = DefaultPolicy(DEFAULT_USERS, backends(mode, tls_dovecot, smtp_backends))
    if case == "wrong CA":
        setting = verified(mode, pki, trusted=pki.client_self_signed.cert)
        reason = "upstream SSL certificate verify error: (20:unable to get local issuer certificate)"
    else:
        setting = verified(mode, pki, name="other.test")
        reason = 'upstream SSL certificate does not match "other.test"'
    sut.start(CONFIG % setting)
    for protocol, (host, port) in backends(mode, tls_dovecot, smtp_backends).items():
        replies = failed_login(protocol, sut.address(protocol))
        assert replies[-1].endswith(INTERNAL_ERROR[protocol]), protocol
        (line,) = [l for l in error_lines(sut) if f"upstream: {host}:{port}" in l]
        assert reason in line and "while SSL handshaking to upstream" in line
        assert ALICE.password not in sut.error_log()


@pytest.mark.parametrize("mode", ["on", "starttls"])
def test_backend_without_tls(sut, mode, dovecot, smtp_backend, auth_server, pki):
    """A plain Dovecot and SMTP backend: no TLS at all (implicit: the handshake fails), or
    no STARTTLS announced (Dovecot refuses STARTTLS, the SMTP backend does not list it)."""
    plain = {"imap": (dovecot.host, dovecot.imap_port), "pop3": (dovecot.host, dovecot.pop3_port),
             "smtp": (smtp_backend.host, smtp_backend.port)}
    auth_server.policy = DefaultPolicy(DEFAULT_USERS, plain)
    sut.start(CONFIG % verified(mode, pki))
    for protocol, (host, port) in plain.items():
        replies = failed_login(protocol, sut.address(protocol))
        assert replies[-1].endswith(INTERNAL_ERROR[protocol]), protocol
        (line,) = [l for l in error_lines(sut) if f"upstream: {host}:{port}" in l]
        if mode == "starttls":
            assert 'upstream does not support STARTTLS: "' in line, line
        else:
            assert "SSL" in line and "while SSL handshaking to upstream" in line, line
    assert smtp_backend.messages() == []


def test_auth_answer_decides_per_session(sut, tls_dovecot, dovecot, auth_server, pki):
    """Auth-SSL-Backend moves one user at a time: alice to the TLS-only Dovecot over
    STARTTLS, bob to the old plain one, with no proxy_ssl* mode configured."""
    def policy(request):
        if request.login == "alice":
            answer = DefaultPolicy(DEFAULT_USERS, {"imap": (tls_dovecot.host, tls_dovecot.imap_port)},
                                   extra_headers=[("Auth-SSL-Backend", "starttls")])
        else:
            answer = DefaultPolicy(DEFAULT_USERS, {"imap": (dovecot.host, dovecot.imap_port)})
        return answer(request)

    auth_server.policy = policy
    sut.start(CONFIG % (f"proxy_ssl_verify on; proxy_ssl_verify_depth 2; "
                        f"proxy_ssl_trusted_certificate {pki.ca.cert}; proxy_ssl_name mx.test;"))
    log_in("imap", sut.address("imap"))
    with open_imap(*sut.address("imap")) as imap:
        imap_login(imap, "bob", "secret pass")
    assert error_lines(sut) == []
    # and Dovecot saw alice's login over TLS
    assert re.search(r"imap-login: Info: Login: user=<alice>, .*, TLS, ", tls_dovecot.log_text())


# -- response injection after STARTTLS (the backend-side mirror of CVE-2014-3556) -----------

def _line(tls_or_plain, conn: Connection) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = tls_or_plain.recv(1)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    conn.received += data
    return data


def _quiet(tls: ssl.SSLSocket, seconds: float = 0.3) -> bool:
    """Nothing more arrives within ``seconds``: the proxy waits for the prompt."""
    return not tls.pending() and not select.select([tls], [], [], seconds)[0]


INJECTED = {
    "imap": b"%s OK Begin TLS now\r\n+ injected\r\n%s OK injected LOGIN\r\n",
    "pop3": b"+OK Begin TLS now\r\n+OK injected\r\n+OK injected\r\n",
    "smtp": b"220 2.0.0 go ahead\r\n250 injected\r\n220 injected\r\n",
}


class InjectingBackend:
    """A fake backend that sends extra lines with its STARTTLS reply, then logs the
    proxy in over TLS, checking each step waits for its own prompt."""

    def __init__(self, protocol: str, pki):
        self.protocol = protocol
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki.server_rsa.cert, pki.server_rsa.key_file)
        self.over_tls: list[bytes] = []
        self.premature: list[bytes] = []
        self.done = threading.Event()

    def __call__(self, conn: Connection) -> None:
        sock = conn.sock
        sock.settimeout(10)
        protocol = self.protocol
        sock.sendall({"imap": b"* OK fake\r\n", "pop3": b"+OK fake\r\n",
                      "smtp": b"220 fake ESMTP\r\n"}[protocol])
        if protocol == "smtp":
            _line(sock, conn)  # EHLO
            sock.sendall(b"250-fake\r\n250 STARTTLS\r\n")
        command = _line(sock, conn)
        tag = command.split(b" ", 1)[0]
        injected = INJECTED[protocol]
        sock.sendall(injected % (tag, tag) if protocol == "imap" else injected)
        tls = self.context.wrap_socket(sock, server_side=True)
        script = {
            "imap": [b"+ go\r\n", b"+ go\r\n", tag + b" OK real login\r\n", b"* BYE\r\n" + tag + b" OK\r\n"],
            "pop3": [b"+OK\r\n", b"+OK real login\r\n", b"+OK bye\r\n"],
            "smtp": [b"250-fake\r\n250 XCLIENT ADDR LOGIN NAME\r\n", b"220 fake real\r\n",
                     b"250 fake\r\n", b"221 bye\r\n"],
        }[protocol]
        try:
            for answer in script:
                line = _line(tls, conn)
                self.over_tls.append(line)
                if not _quiet(tls):
                    self.premature.append(line)
                tls.sendall(answer)
        except (ConnectionError, OSError):
            pass
        finally:
            self.done.set()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_starttls_response_injection(sut, protocol, tcp_backend, auth_server, pki):
    fake = InjectingBackend(protocol, pki)
    backend = tcp_backend(fake)
    auth_server.policy = DefaultPolicy(DEFAULT_USERS, {protocol: (backend.host, backend.port)})
    sut.start(CONFIG % "proxy_starttls on;")
    if protocol == "imap":
        script = [ReadLine(), b"a1 LOGIN alice alice-secret\r\n", ReadLine(), b"a2 LOGOUT\r\n",
                  ReadEOF()]
        first = b"a1 OK real login\r\n"
    elif protocol == "pop3":
        script = [ReadLine(), b"USER alice\r\n", ReadLine(), b"PASS alice-secret\r\n", ReadLine(),
                  b"QUIT\r\n", ReadEOF()]
        first = b"+OK real login\r\n"
    else:
        script = login_script("smtp", then=[ReadLine(), b"QUIT\r\n", ReadEOF()])
        first = b"235 2.0.0 OK\r\n"
    replies = run_script(sut.address(protocol), script).replies()
    assert fake.done.wait(10)
    assert first in replies
    assert not any(b"injected" in r for r in replies)
    assert fake.premature == []
    expected = {
        "imap": [b"a1 LOGIN {5}\r\n", b"alice {12}\r\n", b"alice-secret\r\n", b"a2 LOGOUT\r\n"],
        "pop3": [b"USER alice\r\n", b"PASS alice-secret\r\n", b"QUIT\r\n"],
        "smtp": [b"EHLO mx.test\r\n", None, b"EHLO client.test\r\n", b"QUIT\r\n"],
    }[protocol]
    assert len(fake.over_tls) == len(expected)
    for got, want in zip(fake.over_tls, expected):
        if want is None:
            assert got.startswith(b"XCLIENT ADDR=127.0.0.1 ")
        else:
            assert got == want
    assert error_lines(sut) == []


def test_embedders_auth_callable_decides_too(embedded_factory, tls_dovecot, auth_server, pki):
    """The embedding API's AuthOK carries the same choice (backend_tls); a value that is
    none of on, starttls, off is the callable's error, not a plaintext login."""
    import mailgate

    modes = iter(["starttls", "yes"])

    async def auth(facts):
        return mailgate.AuthOK(tls_dovecot.host, tls_dovecot.imap_port, backend_tls=next(modes))

    gate = embedded_factory()
    gate.start(CONFIG % f"proxy_ssl_verify on; proxy_ssl_verify_depth 2; "
                        f"proxy_ssl_trusted_certificate {pki.ca.cert}; proxy_ssl_name mx.test;",
               auth=auth)
    log_in("imap", gate.address("imap"))
    replies = failed_login("imap", gate.address("imap"))
    assert replies[-1] == b"* BAD internal server error\r\n"
    (line,) = error_lines(gate)
    assert "auth callable returned backend_tls='yes', not on, starttls or off" in line


class CertificateCheckingPop3:
    """A POP3S backend that requires a client certificate from the test CA and keeps
    the subject of the one it got."""

    def __init__(self, pki):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki.server_rsa.cert, pki.server_rsa.key_file)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(pki.ca.cert)
        self.subjects: list = []

    def __call__(self, conn: Connection) -> None:
        conn.sock.settimeout(10)
        tls = self.context.wrap_socket(conn.sock, server_side=True)
        self.subjects.append(dict(item[0] for item in tls.getpeercert()["subject"]))
        tls.sendall(b"+OK fake\r\n")
        for answer in (b"+OK\r\n", b"+OK logged in\r\n", b"+OK bye\r\n"):
            _line(tls, conn)
            tls.sendall(answer)


def test_client_certificate_with_an_encrypted_key(sut, tcp_backend, auth_server, pki):
    """proxy_ssl_certificate, its key encrypted, the passphrase from proxy_ssl_password_file."""
    fake = CertificateCheckingPop3(pki)
    backend = tcp_backend(fake)
    auth_server.policy = DefaultPolicy(DEFAULT_USERS, {"pop3": (backend.host, backend.port)})
    key = pki.directory / "client.enc.key"
    key.write_bytes(pki.client.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(pki.key_password.encode())))
    sut.start(CONFIG % (f"proxy_ssl on; proxy_ssl_certificate {pki.client.cert}; "
                        f"proxy_ssl_certificate_key {key}; "
                        f"proxy_ssl_password_file {pki.password_file};"))
    script = [ReadLine(), b"USER alice\r\n", ReadLine(), b"PASS alice-secret\r\n", ReadLine(),
              b"QUIT\r\n", ReadEOF()]
    replies = run_script(sut.address("pop3"), script).replies()
    assert b"+OK logged in\r\n" in replies
    assert [subject["commonName"] for subject in fake.subjects] == ["client one"]
    assert error_lines(sut) == []
