"""The generated PKI: chains verify, CRLs revoke, keys and password files load."""

from __future__ import annotations

import ssl
import subprocess

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.support.certs import KEY_PASSWORD


def _verify(pki, cert_file, *extra):
    argv = [
        "openssl",
        "verify",
        "-CAfile",
        str(pki.ca.cert),
        "-untrusted",
        str(pki.intermediate.cert),
        *extra,
        str(cert_file),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.requires("openssl")
@pytest.mark.parametrize(
    "name", ["server_rsa", "server_ecdsa", "client", "client_via_intermediate"]
)
def test_good_certificates_verify_against_the_root_with_crls(pki, name):
    files = getattr(pki, name)
    code, output = _verify(pki, files.cert, "-crl_check_all", "-CRLfile", str(pki.crl_all))
    assert code == 0, output


@pytest.mark.requires("openssl")
@pytest.mark.parametrize(
    "name, reason",
    [
        ("client_revoked", "certificate revoked"),
        ("client_via_intermediate_revoked", "certificate revoked"),
        ("client_expired", "certificate has expired"),
        ("client_self_signed", "self-signed certificate"),
    ],
)
def test_bad_client_certificates_fail(pki, name, reason):
    code, output = _verify(
        pki, getattr(pki, name).cert, "-crl_check_all", "-CRLfile", str(pki.crl_all)
    )
    assert code != 0 and reason in output, output


@pytest.mark.requires("openssl")
def test_each_crl_covers_its_own_issuer(pki):
    # Without the intermediate's CRL the check cannot complete; with only the
    # root's CRL the root-issued revoked client fails as revoked.
    code, output = _verify(pki, pki.client_revoked.cert, "-crl_check", "-CRLfile", str(pki.crl_ca))
    assert code != 0 and "certificate revoked" in output
    code, output = _verify(
        pki,
        pki.client_via_intermediate_revoked.cert,
        "-crl_check",
        "-CRLfile",
        str(pki.crl_intermediate),
    )
    assert code != 0 and "certificate revoked" in output


def test_server_files_hold_leaf_then_intermediate(pki):
    for files in (pki.server_rsa, pki.server_ecdsa):
        text = files.cert.read_text()
        assert text.count("BEGIN CERTIFICATE") == 2
        assert text.startswith(files.cert_pem)
        combined = files.pem.read_text()
        assert combined.startswith(text) and "PRIVATE KEY" in combined
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(files.pem))


def test_encrypted_keys_need_the_password(pki):
    for path, files in (
        (pki.server_rsa_encrypted_key, pki.server_rsa),
        (pki.server_ecdsa_encrypted_key, pki.server_ecdsa),
    ):
        data = path.read_bytes()
        assert b"ENCRYPTED" in data
        with pytest.raises(TypeError):
            load_pem_private_key(data, password=None)
        key = load_pem_private_key(data, password=KEY_PASSWORD.encode())
        assert key.public_key() == files.key.public_key()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(files.cert), str(path), password=KEY_PASSWORD)
    assert KEY_PASSWORD in pki.password_file.read_text().splitlines()


@pytest.mark.requires("openssl")
def test_serial_and_fingerprint_match_openssl(pki):
    done = subprocess.run(
        [
            "openssl",
            "x509",
            "-noout",
            "-serial",
            "-fingerprint",
            "-sha1",
            "-in",
            str(pki.client.cert),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert f"serial={pki.client.serial_hex}" in done.stdout
    assert pki.client.sha1_fingerprint.upper() == done.stdout.split("=")[-1].strip().replace(
        ":", ""
    )


def test_ticket_keys_have_nginx_sizes(pki):
    assert len(pki.ticket_key_48.read_bytes()) == 48
    assert len(pki.ticket_key_80.read_bytes()) == 80
