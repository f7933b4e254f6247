"""Each ssl_* directive's effect on the wire, seen by real clients
(Python's ssl module and openssl s_client)."""

from __future__ import annotations

import re
import ssl
import subprocess

import pytest

from tests.support.clients import client_context
from tests.tls.clients import connect, handshake_session, s_client
from tests.tls.conf import context

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3


def greeting(srv, pki, **kwargs) -> dict:
    client = connect(srv.port, client_context(pki, **kwargs))
    facts = client.facts
    client.quit()
    return facts


def handshake_errors(srv) -> list:
    return [event for event in srv.events if event[0] == "error"]


def assert_refused(srv, code: str, reason: str) -> None:
    """The one handshake failure the server saw, logged at info as nginx does."""
    (_, level, message), = handshake_errors(srv)
    assert level == "info"
    assert message.startswith(f"SSL_do_handshake() failed (SSL: error:{code}:")
    assert message.endswith(f":{reason})")


# ---- certificates -----------------------------------------------------------

def test_certificate_file_carries_the_chain(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki))
    # the client trusts only the root: the intermediate must come from the file
    assert greeting(srv, pki)["protocol"] == "TLSv1.3"


def test_no_automatic_chain_building(tmp_path, pki, serve):
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(pki.server_ecdsa.cert_pem)
    body = f"ssl_certificate {leaf}; ssl_certificate_key {pki.server_ecdsa.key_file};"
    srv = serve(main=context(tmp_path, pki, body, names=()))
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        connect(srv.port, client_context(pki))


def test_key_in_the_certificate_file(tmp_path, pki, serve):
    path = pki.server_ecdsa.pem
    srv = serve(main=context(tmp_path, pki, f"ssl_certificate {path}; ssl_certificate_key {path};", names=()))
    assert greeting(srv, pki)["cipher"]


def test_data_values(tmp_path, pki, serve):
    cert = pki.server_ecdsa.cert.read_text()
    key = pki.server_ecdsa.key_file.read_text()
    body = f"ssl_certificate 'data:{cert}'; ssl_certificate_key 'data:{key}';"
    srv = serve(main=context(tmp_path, pki, body, names=()))
    out = s_client(srv.port, "-CAfile", str(pki.ca.cert), "-verify_return_error")
    assert "CN = mx.test ECDSA" in out
    assert "Verify return code: 0 (ok)" in out


@pytest.mark.parametrize(
    "sigalgs, subject",
    [
        ("ECDSA+SHA256", "mx.test ECDSA"),
        ("RSA-PSS+SHA256:RSA+SHA256", "mx.test RSA"),
    ],
)
@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_rsa_or_ecdsa_by_signature_algorithms(tmp_path, pki, serve, sigalgs, subject, version):
    srv = serve(main=context(tmp_path, pki, names=("rsa", "ecdsa")))
    out = s_client(srv.port, version, "-sigalgs", sigalgs, "-CAfile", str(pki.ca.cert))
    assert f"subject=C = US, O = mailgate tests, CN = {subject}" in out
    assert "Verify return code: 0 (ok)" in out


# ---- protocols and ciphers ------------------------------------------------------

def test_default_protocols_are_tls12_and_tls13(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki))
    assert greeting(srv, pki)["protocol"] == "TLSv1.3"
    assert greeting(srv, pki, version=TLS12)["protocol"] == "TLSv1.2"
    out = s_client(srv.port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert "OK {" not in out


def test_protocols_tls12_only(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, "ssl_protocols TLSv1.2;"))
    assert greeting(srv, pki)["protocol"] == "TLSv1.2"
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        connect(srv.port, client_context(pki, version=TLS13))
    assert_refused(srv, "0A000102", "unsupported protocol")


def test_protocols_tls13_only(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, "ssl_protocols TLSv1.3;"))
    assert greeting(srv, pki)["protocol"] == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        connect(srv.port, client_context(pki, version=TLS12))


def test_older_protocols_when_listed(tmp_path, pki, serve):
    # OpenSSL 3 also wants security level 0 for TLS 1.1 (SHA-1 signatures)
    body = "ssl_protocols TLSv1.1 TLSv1.2; ssl_ciphers DEFAULT:@SECLEVEL=0;"
    srv = serve(main=context(tmp_path, pki, body))
    out = s_client(srv.port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert '"protocol": "TLSv1.1"' in out
    assert "OK {" not in s_client(srv.port, "-tls1_3")


CHACHA = "ECDHE-ECDSA-CHACHA20-POLY1305"
AESGCM = "ECDHE-ECDSA-AES128-GCM-SHA256"


@pytest.mark.parametrize("prefer, expected", [("off", CHACHA), ("on", AESGCM)])
def test_ciphers_and_server_preference(tmp_path, pki, serve, prefer, expected):
    body = f"ssl_protocols TLSv1.2; ssl_ciphers {AESGCM}:{CHACHA}; ssl_prefer_server_ciphers {prefer};"
    srv = serve(main=context(tmp_path, pki, body))
    facts = greeting(srv, pki, ciphers=f"{CHACHA}:{AESGCM}")
    assert facts["cipher"] == expected


def test_no_shared_cipher(tmp_path, pki, serve):
    body = f"ssl_protocols TLSv1.2; ssl_ciphers {AESGCM};"
    srv = serve(main=context(tmp_path, pki, body))
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
        connect(srv.port, client_context(pki, ciphers=CHACHA))
    (_, level, message), = handshake_errors(srv)
    assert (level, message) == (
        "info",
        "SSL_do_handshake() failed (SSL: error:0A0000C1:SSL routines::no shared cipher)",
    )


@pytest.mark.requires("openssl")
def test_dhparam_enables_dhe(tmp_path, pki, serve):
    dh = tmp_path / "dh.pem"
    subprocess.run(
        ["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048",
         "-out", str(dh)],
        check=True, capture_output=True,
    )
    body = "ssl_protocols TLSv1.2; ssl_ciphers DHE-RSA-AES128-GCM-SHA256;"
    without = serve(main=context(tmp_path / "a", pki, body, names=("rsa",)))
    with pytest.raises(ssl.SSLError):
        connect(without.port, client_context(pki))
    with_dh = serve(main=context(tmp_path / "b", pki, body + f" ssl_dhparam {dh};", names=("rsa",)))
    assert greeting(with_dh, pki)["cipher"] == "DHE-RSA-AES128-GCM-SHA256"


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_ecdh_curve_list(tmp_path, pki, serve, version):
    srv = serve(main=context(tmp_path, pki, "ssl_ecdh_curve prime256v1:secp384r1;"))
    out = s_client(srv.port, version, "-groups", "X25519")
    assert "OK {" not in out
    # P-256 last: under TLS 1.2 it also admits the P-256 ECDSA certificate
    out = s_client(srv.port, version, "-groups", "X25519:secp384r1:P-256")
    assert "OK {" in out
    assert re.search(r"Server Temp Key: ECDH, (prime256v1|secp384r1)", out)


def test_ecdh_curve_auto_allows_x25519(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki))
    out = s_client(srv.port, "-tls1_3", "-groups", "X25519")
    assert "Server Temp Key: X25519" in out


# ---- ALPN -------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_alpn_selects_the_protocol_name(tmp_path, pki, serve, protocol):
    srv = serve(main=context(tmp_path, pki, protocol=protocol))
    assert greeting(srv, pki, alpn=["h2", protocol])["alpn"] == protocol
    assert greeting(srv, pki)["alpn"] is None


def test_alpn_mismatch_is_refused(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki))
    with pytest.raises(ssl.SSLError, match="no application protocol"):
        connect(srv.port, client_context(pki, alpn=["h2", "pop3"]))
    assert_refused(srv, "0A0000EB", "no application protocol")


# ---- ssl_conf_command -------------------------------------------------------------

def test_conf_command_overrides_protocols(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, "ssl_conf_command MaxProtocol TLSv1.2;"))
    assert greeting(srv, pki)["protocol"] == "TLSv1.2"


def test_conf_command_sets_tls13_suites(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, "ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256;"))
    assert greeting(srv, pki)["cipher"] == "TLS_CHACHA20_POLY1305_SHA256"


def test_conf_command_overrides_session_tickets(tmp_path, pki, serve):
    body = "ssl_session_cache off; ssl_session_tickets off; ssl_conf_command Options SessionTicket;"
    srv = serve(main=context(tmp_path, pki, body))
    ctx = client_context(pki, version=TLS12)
    _, session = handshake_session(srv.port, ctx)
    assert session.has_ticket
    facts, _ = handshake_session(srv.port, ctx, session)
    assert facts["reused"]


def test_conf_command_file_values_are_relative_to_the_configuration(tmp_path, pki, serve):
    (tmp_path / "other.pem").write_bytes(pki.server_other.cert.read_bytes())
    (tmp_path / "other.key").write_bytes(pki.server_other.key_file.read_bytes())
    body = "ssl_conf_command Certificate other.pem; ssl_conf_command PrivateKey other.key;"
    srv = serve(main=context(tmp_path, pki, body))
    out = s_client(srv.port, "-CAfile", str(pki.ca.cert))
    assert "CN = other.test" in out


# ---- certificate compression --------------------------------------------------------

def test_certificate_compression_without_support_warns(tmp_path, pki):
    messages: list = []
    context(tmp_path, pki, "ssl_certificate_compression on;", messages=messages)
    assert [(m.level, m.message) for m in messages] == [
        ("warn", '"ssl_certificate_compression" ignored, not supported')
    ]
