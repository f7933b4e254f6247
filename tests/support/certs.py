"""A throw-away PKI for TLS tests, generated with ``cryptography`` and written as files.

Layout of the tree (every certificate below the root is signed by its parent)::

    root CA ─┬─ intermediate CA ─┬─ server (RSA 2048)     served with its chain
             │                   ├─ server (ECDSA P-256)  served with its chain
             │                   ├─ server "other.test" (ECDSA P-256), another name
             │                   ├─ client via intermediate
             │                   └─ client via intermediate, revoked (intermediate CRL)
             ├─ client (signed by the root; serial 0x0ABCDEF1, a leading zero digit)
             ├─ client, revoked (root CRL)
             └─ client, expired
    client, self-signed

Servers present ``leaf + intermediate`` and are named ``localhost``, ``mx.test``,
127.0.0.1 and ::1 (subjects ``mx.test RSA``, ``mx.test ECDSA``, ``other.test``);
clients trust ``ca.crt`` (the root alone).  A server that verifies clients is given
``ca.crt`` (clients of the intermediate send their chain) or ``ca-bundle.crt`` (root +
intermediate).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CLIENT_SERIAL", "KEY_PASSWORD", "PKI", "SERVER_NAMES", "CertFiles", "make_pki"]

KEY_PASSWORD = "key pass 1"
"""Password of the encrypted server keys (also in ``*.pass`` for ssl_password_file)."""

SERVER_NAMES = ("localhost", "mx.test")
"""The DNS names of every server certificate (clients check ``mx.test``)."""
CLIENT_SERIAL = 0x0ABCDEF1
"""Serial number of ``PKI.client`` (nginx sends it as ``0ABCDEF1``)."""
SERVER_IPS = ("127.0.0.1", "::1")
_ORG = "mailgate tests"
_DAY = _dt.timedelta(days=1)

_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class CertFiles:
    """One certificate with its key, as objects and as files.

    ``cert`` holds the certificate followed by its chain up to (not including) the
    root; ``pem`` holds the same followed by the unencrypted key (curl's and
    openssl's single-file form, and nginx's when cert and key share a file).
    """

    name: str
    certificate: x509.Certificate
    key: _PrivateKey = field(repr=False)
    cert: Path
    key_file: Path
    pem: Path
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def serial_hex(self) -> str:
        """Serial number as nginx sends it in Auth-SSL-Serial: upper-case hex of the
        integer's bytes (so always an even number of digits, as OpenSSL prints it)."""
        digits = format(self.certificate.serial_number, "X")
        return digits.zfill(len(digits) + len(digits) % 2)

    @property
    def sha1_fingerprint(self) -> str:
        """SHA-1 of the DER, lower-case hex (nginx's Auth-SSL-Fingerprint)."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return hashlib.sha1(der).hexdigest()

    @property
    def cert_pem(self) -> str:
        """The leaf certificate alone, PEM text."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class PKI:
    """Every file of the test PKI; see the module docstring for the tree."""

    directory: Path
    ca: CertFiles
    intermediate: CertFiles
    ca_bundle: Path
    server_rsa: CertFiles
    server_ecdsa: CertFiles
    server_other: CertFiles
    server_rsa_encrypted_key: Path
    server_ecdsa_encrypted_key: Path
    password_file: Path
    client: CertFiles
    client_via_intermediate: CertFiles
    client_self_signed: CertFiles
    client_revoked: CertFiles
    client_via_intermediate_revoked: CertFiles
    client_expired: CertFiles
    crl_ca: Path
    crl_intermediate: Path
    crl_all: Path
    ticket_key_48: Path
    ticket_key_80: Path
    key_password: str = KEY_PASSWORD


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_key(kind: str) -> _PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key kind {kind!r}")


class _Issuer:
    """Signs certificates; a ``None`` issuer means self-signed."""

    def __init__(self, key: _PrivateKey, certificate: x509.Certificate) -> None:
        self.key = key
        self.certificate = certificate


def _issue(
    common_name: str,
    key: _PrivateKey,
    issuer: _Issuer | None,
    *,
    ca: bool = False,
    path_length: int | None = None,
    server: bool = False,
    client: bool = False,
    expired: bool = False,
    serial: int | None = None,
) -> x509.Certificate:
    now = _dt.datetime.now(_dt.UTC)
    if expired:
        not_before, not_after = now - 30 * _DAY, now - _DAY
    else:
        not_before, not_after = now - _DAY, now + 365 * _DAY
    subject = _name(common_name)
    issuer_name = issuer.certificate.subject if issuer else subject
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if ca:
        usage = {"key_cert_sign": True, "crl_sign": True, "digital_signature": False}
    else:
        usage = {"key_cert_sign": False, "crl_sign": False, "digital_signature": True}
    builder = builder.add_extension(
        x509.KeyUsage(
            content_commitment=False,
            key_encipherment=not ca and isinstance(key, rsa.RSAPrivateKey),
            data_encipherment=False,
            key_agreement=False,
            encipher_only=False,
            decipher_only=False,
            **usage,
        ),
        critical=True,
    )
    purposes = []
    if server:
        purposes.append(ExtendedKeyUsageOID.SERVER_AUTH)
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_NAMES]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in SERVER_IPS]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if client:
        purposes.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if purposes:
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: _PrivateKey, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption
    if password is None:
        encryption = serialization.NoEncryption()
    else:
        encryption = serialization.BestAvailableEncryption(password.encode())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption
    )


def _write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def _save(
    directory: Path,
    name: str,
    certificate: x509.Certificate,
    key: _PrivateKey,
    chain: tuple[x509.Certificate, ...] = (),
) -> CertFiles:
    cert_pem = _pem(certificate) + b"".join(_pem(c) for c in chain)
    key_pem = _key_pem(key)
    return CertFiles(
        name=name,
        certificate=certificate,
        key=key,
        cert=_write(directory / f"{name}.crt", cert_pem),
        key_file=_write(directory / f"{name}.key", key_pem, 0o600),
        pem=_write(directory / f"{name}.pem", cert_pem + key_pem, 0o600),
        chain=chain,
    )


def _crl(issuer: _Issuer, revoked: list[x509.Certificate]) -> bytes:
    now = _dt.datetime.now(_dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(now - _DAY)
        .next_update(now + 365 * _DAY)
    )
    for certificate in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(certificate.serial_number)
            .revocation_date(now - _DAY)
            .build()
        )
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def make_pki(directory: Path | str) -> PKI:
    """Generate the whole test PKI into ``directory`` (created if missing).

    Example::

        pki = make_pki(tmp_path / "pki")
        ctx = ssl.create_default_context(cafile=pki.ca.cert)
        conf = f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key {pki.server_rsa.key_file};"
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    root_key = _new_key("ecdsa")
    root_cert = _issue("mailgate test root CA", root_key, None, ca=True, path_length=1)
    root = _Issuer(root_key, root_cert)
    inter_key = _new_key("ecdsa")
    inter_cert = _issue("mailgate test intermediate CA", inter_key, root, ca=True, path_length=0)
    inter = _Issuer(inter_key, inter_cert)

    def leaf(name: str, cn: str, kind: str, issuer: _Issuer | None, **kw: bool | int) -> CertFiles:
        key = _new_key(kind)
        certificate = _issue(cn, key, issuer, **kw)
        chain = (inter_cert,) if issuer is inter else ()
        return _save(out, name, certificate, key, chain)

    server_rsa = leaf("server-rsa", "mx.test RSA", "rsa", inter, server=True)
    server_ecdsa = leaf("server-ecdsa", "mx.test ECDSA", "ecdsa", inter, server=True)
    server_other = leaf("server-other", "other.test", "ecdsa", inter, server=True)
    client = leaf("client", "client one", "ecdsa", root, client=True, serial=CLIENT_SERIAL)
    client_inter = leaf("client-inter", "client two", "ecdsa", inter, client=True)
    client_self = leaf("client-self", "client self", "ecdsa", None, client=True)
    client_revoked = leaf("client-revoked", "client revoked", "ecdsa", root, client=True)
    client_inter_revoked = leaf(
        "client-inter-revoked", "client two revoked", "ecdsa", inter, client=True
    )
    client_expired = leaf(
        "client-expired", "client expired", "ecdsa", root, client=True, expired=True
    )

    crl_ca = _crl(root, [client_revoked.certificate])
    crl_inter = _crl(inter, [client_inter_revoked.certificate])

    def encrypted(files: CertFiles) -> Path:
        return _write(out / f"{files.name}.enc.key", _key_pem(files.key, KEY_PASSWORD), 0o600)

    return PKI(
        directory=out,
        ca=_save(out, "ca", root_cert, root_key),
        intermediate=_save(out, "intermediate", inter_cert, inter_key),
        ca_bundle=_write(out / "ca-bundle.crt", _pem(root_cert) + _pem(inter_cert)),
        server_rsa=server_rsa,
        server_ecdsa=server_ecdsa,
        server_other=server_other,
        server_rsa_encrypted_key=encrypted(server_rsa),
        server_ecdsa_encrypted_key=encrypted(server_ecdsa),
        # nginx tries each line of ssl_password_file in turn: a wrong one first
        # proves the whole file is read.
        password_file=_write(
            out / "keys.pass", f"wrong password\n{KEY_PASSWORD}\n".encode(), 0o600
        ),
        client=client,
        client_via_intermediate=client_inter,
        client_self_signed=client_self,
        client_revoked=client_revoked,
        client_via_intermediate_revoked=client_inter_revoked,
        client_expired=client_expired,
        crl_ca=_write(out / "ca.crl", crl_ca),
        crl_intermediate=_write(out / "intermediate.crl", crl_inter),
        crl_all=_write(out / "crl-all.pem", crl_ca + crl_inter),
        ticket_key_48=_write(out / "ticket-48.key", os.urandom(48), 0o600),
        ticket_key_80=_write(out / "ticket-80.key", os.urandom(80), 0o600),
    )
