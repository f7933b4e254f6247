"""Certificates for the TLS tests, generated at test time with cryptography.

Server side: a root CA, an intermediate, and RSA and ECDSA server
certificates issued by the intermediate.  Client side: a separate client CA
with an intermediate; a client certificate from each; one revoked by the
client CA's CRL; a self-signed one.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC)
PASSWORD = b"secret pass"


def _name(cn: str, org: str = "MT Org") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass
class Issued:
    cert: x509.Certificate
    key: object

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, password: bytes | None = None) -> bytes:
        encryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )


def _issue(subject: x509.Name, key, issuer: Issued | None, *, ca: bool, server: bool = False,
           serial: int | None = None, days: int = 30) -> Issued:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName("mail.test")]),
            critical=False,
        )
    signer = issuer.key if issuer else key
    cert = builder.sign(signer, hashes.SHA256())
    return Issued(cert, key)


def _ec() -> object:
    return ec.generate_private_key(ec.SECP256R1())


def _rsa() -> object:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class PKI:
    """Every certificate, key and CRL the tests use, written under ``root``."""

    def __init__(self, root: str):
        self.root = root
        self.ca = _issue(_name("Test Root CA"), _ec(), None, ca=True)
        self.intermediate = _issue(_name("Test Intermediate CA"), _ec(), self.ca, ca=True)
        self.rsa = _issue(_name("mail.test RSA"), _rsa(), self.intermediate, ca=False, server=True)
        self.ecdsa = _issue(_name("mail.test ECDSA"), _ec(), self.intermediate, ca=False, server=True)
        self.other = _issue(_name("other.test"), _ec(), self.intermediate, ca=False, server=True)

        self.client_ca = _issue(_name("Client CA", "Client Org"), _ec(), None, ca=True)
        self.client_intermediate = _issue(
            _name("Client Intermediate CA", "Client Org"), _ec(), self.client_ca, ca=True
        )
        self.client = _issue(_name("client one"), _ec(), self.client_ca, ca=False, serial=0x0ABCDEF1)
        self.client_via_intermediate = _issue(_name("client two"), _ec(), self.client_intermediate, ca=False)
        self.revoked = _issue(_name("client revoked"), _ec(), self.client_ca, ca=False)
        self.self_signed = _issue(_name("client self"), _ec(), None, ca=False)

        self.paths: dict[str, str] = {}
        self._write("ca.pem", self.ca.cert_pem)
        self._write("rsa.pem", self.rsa.cert_pem + self.intermediate.cert_pem)
        self._write("rsa.key", self.rsa.key_pem())
        self._write("rsa-enc.key", self.rsa.key_pem(PASSWORD))
        self._write("ecdsa.pem", self.ecdsa.cert_pem + self.intermediate.cert_pem)
        self._write("ecdsa.key", self.ecdsa.key_pem())
        self._write("ecdsa-leaf.pem", self.ecdsa.cert_pem)
        self._write("other.pem", self.other.cert_pem + self.intermediate.cert_pem)
        self._write("other.key", self.other.key_pem())
        self._write("ecdsa-combined.pem", self.ecdsa.key_pem() + self.ecdsa.cert_pem + self.intermediate.cert_pem)

        self._write("client-ca.pem", self.client_ca.cert_pem)
        self._write("client-ca-bundle.pem", self.client_ca.cert_pem + self.client_ca.cert_pem + self.ca.cert_pem)
        self._write("client.pem", self.client.cert_pem)
        self._write("client.key", self.client.key_pem())
        self._write(
            "client-two.pem", self.client_via_intermediate.cert_pem + self.client_intermediate.cert_pem
        )
        self._write("client-two.key", self.client_via_intermediate.key_pem())
        self._write("revoked.pem", self.revoked.cert_pem)
        self._write("revoked.key", self.revoked.key_pem())
        self._write("self.pem", self.self_signed.cert_pem)
        self._write("self.key", self.self_signed.key_pem())
        self._write("client-crl.pem", self._crl(self.client_ca, [self.revoked]))
        self._write("junk.pem", b"junk\n")

    def _crl(self, issuer: Issued, revoked: list[Issued]) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.cert.subject)
            .last_update(NOW - datetime.timedelta(days=1))
            .next_update(NOW + datetime.timedelta(days=30))
        )
        for item in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(item.cert.serial_number)
                .revocation_date(NOW - datetime.timedelta(hours=1))
                .build()
            )
        return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def _write(self, name: str, data: bytes) -> None:
        path = os.path.join(self.root, name)
        with open(path, "wb") as f:
            f.write(data)
        self.paths[name] = path

    def __getitem__(self, name: str) -> str:
        return self.paths[name]

    def write(self, name: str, data: bytes) -> str:
        self._write(name, data)
        return self.paths[name]
