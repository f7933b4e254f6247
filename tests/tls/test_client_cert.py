"""ssl_verify_client and friends: the post-handshake policy of ngx_mail_verify_cert()
(docs/nginx-behaviour.md#client-certificates) and the facts auth_http reports, with
real client certificates."""

from __future__ import annotations

import hashlib
import ssl

import pytest
from cryptography.hazmat.primitives import serialization
from mailgate.tls import SessionZones

from tests.support.clients import client_context
from tests.tls.clients import connect, s_client
from tests.tls.conf import context


def verify(pki, mode: str, *, ca: str = "client_certificate", depth: int | None = None,
           crl: bool = False) -> str:
    body = f"ssl_verify_client {mode};"
    if ca:
        body += f" ssl_{ca} {pki.ca.cert};"
    if depth is not None:
        body += f" ssl_verify_depth {depth};"
    if crl:
        body += f" ssl_crl {pki.crl_ca};"
    return body


def client(pki, name: str | None):
    """A client context, with the PKI's client certificate ``name`` (``client_revoked``...)."""
    return client_context(pki, client_cert=None if name is None else getattr(pki, name))


def outcome(srv, pki, name: str | None):
    """(greeting line, the server's certificate event if any)."""
    conn = connect(srv.port, client(pki, name))
    greeting = conn.greeting
    conn.close()
    events = [e for e in srv.events if e[0] == "cert"]
    return greeting, (events[-1][1:] if events else None)


# ---- the policy --------------------------------------------------------------------

def test_on_without_certificate(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, verify(pki, "on")))
    assert outcome(srv, pki, None) == (
        b"ERR no_cert\r\n", ("no_cert", "client sent no required SSL certificate")
    )


def test_on_with_a_ca_signed_certificate(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, verify(pki, "on")))
    greeting, event = outcome(srv, pki, "client")
    assert greeting.startswith(b"OK ") and event is None


def test_on_with_a_self_signed_certificate(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, verify(pki, "on")))
    assert outcome(srv, pki, "client_self_signed") == (
        b"ERR cert_error\r\n",
        ("cert_error", "client SSL certificate verify error: (18:self-signed certificate)"),
    )


def test_optional_without_certificate(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, verify(pki, "optional")))
    conn = connect(srv.port, client(pki, None))
    assert conn.facts["verify"] == "NONE" and conn.facts["subject"] is None


def test_optional_with_a_self_signed_certificate(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, verify(pki, "optional")))
    assert outcome(srv, pki, "client_self_signed")[0] == b"ERR cert_error\r\n"


def test_optional_no_ca_accepts_a_self_signed_certificate(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, verify(pki, "optional_no_ca", ca="")))
    conn = connect(srv.port, client(pki, "client_self_signed"))
    assert conn.facts["verify"] == "FAILED:self-signed certificate"
    assert conn.facts["subject"] == pki.client_self_signed.certificate.subject.rfc4514_string()


def test_optional_no_ca_still_refuses_a_revoked_certificate(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, verify(pki, "optional_no_ca", crl=True)))
    assert outcome(srv, pki, "client_revoked") == (
        b"ERR cert_error\r\n",
        ("cert_error", "client SSL certificate verify error: (23:certificate revoked)"),
    )
    assert outcome(srv, pki, "client")[0].startswith(b"OK ")


def test_crl_needed_for_every_certificate_of_the_chain(tmp_path, pki, serve):
    # the root's CRL does not cover the intermediate
    srv = serve(main=context(tmp_path, pki, verify(pki, "on", crl=True)))
    assert outcome(srv, pki, "client_via_intermediate") == (
        b"ERR cert_error\r\n",
        ("cert_error", "client SSL certificate verify error: (3:unable to get certificate CRL)"),
    )


@pytest.mark.parametrize("depth, accepted", [(0, False), (1, True)])
def test_verify_depth(tmp_path, pki, serve, depth, accepted):
    # this client is issued by the intermediate, which it sends along
    srv = serve(main=context(tmp_path, pki, verify(pki, "on", depth=depth)))
    assert outcome(srv, pki, "client_via_intermediate")[0].startswith(b"OK ") == accepted


def test_trusted_certificate_verifies(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, verify(pki, "on", ca="trusted_certificate")))
    assert outcome(srv, pki, "client")[0].startswith(b"OK ")
    assert outcome(srv, pki, "client_self_signed")[0] == b"ERR cert_error\r\n"


# ---- what the client is told ---------------------------------------------------------

def test_client_certificate_names_are_sent_once_each(tmp_path, pki, serve):
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(pki.ca.cert_pem * 2 + pki.intermediate.cert_pem)
    body = f"ssl_verify_client optional; ssl_client_certificate {bundle};"
    srv = serve(main=context(tmp_path, pki, body))
    out = s_client(srv.port)
    names = out.split("Acceptable client certificate CA names")[1].split("---")[0]
    assert [line for line in names.splitlines() if line.startswith("C = ")] == [
        "C = US, O = mailgate tests, CN = mailgate test root CA",
        "C = US, O = mailgate tests, CN = mailgate test intermediate CA",
    ]


def test_trusted_certificate_names_are_not_sent(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, verify(pki, "optional", ca="trusted_certificate")))
    assert "No client certificate CA names sent" in s_client(srv.port)


def test_no_certificate_request_when_off(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki))
    out = s_client(srv.port, "-tls1_2")
    assert "No client certificate CA names sent" in out
    assert "Requested Signature Algorithms" not in out


# ---- facts for auth_http ----------------------------------------------------------------

def test_auth_http_facts(tmp_path, pki, serve):
    srv = serve(main=context(tmp_path, pki, verify(pki, "on")))
    facts = connect(srv.port, client(pki, "client")).facts
    der = pki.client.certificate.public_bytes(serialization.Encoding.DER)
    assert facts["verify"] == "SUCCESS"
    # RFC 2253: the last RDN of the DER first
    assert facts["subject"] == "CN=client one,O=mailgate tests,C=US"
    assert facts["issuer"] == "CN=mailgate test root CA,O=mailgate tests,C=US"
    assert facts["serial"] == "0ABCDEF1"
    assert facts["fingerprint"] == hashlib.sha1(der).hexdigest()
    assert facts["pem"] == pki.client.cert_pem
    assert facts["protocol"] == "TLSv1.3"
    assert facts["cipher"] == "TLS_AES_256_GCM_SHA384"
    assert facts["sni"] == "mx.test"


# ---- a failed verification is not resumable -----------------------------------------------

@pytest.mark.parametrize("mode, name", [("on", "client_self_signed"), ("on", None), ("optional", "client_self_signed")])
def test_failure_removes_the_session(tmp_path, pki, serve, mode, name):
    zones = SessionZones()
    body = verify(pki, mode) + " ssl_session_cache shared:SSL:1m; ssl_session_tickets off;"
    srv = serve(main=context(tmp_path, pki, body, zones=zones))
    ctx = client(pki, name)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    conn = connect(srv.port, ctx)
    assert conn.greeting.startswith(b"ERR ")
    session = conn.sock.session
    conn.close()
    stats = zones["SSL"].stats()
    assert (stats.stored, stats.count) == (1, 0)
    conn = connect(srv.port, ctx, session=session)
    assert not conn.sock.session_reused
    conn.close()
