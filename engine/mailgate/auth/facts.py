"""What an authentication decision is made from: the facts nginx sends to auth_http.

``AuthFacts`` is handed to an embedding service's auth callable as it is, and is
what the ``auth_http`` client turns into request headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AuthFacts", "ProxyAddresses", "SSLFacts"]


@dataclass(frozen=True, slots=True)
class ProxyAddresses:
    """The addresses of an inbound PROXY protocol header (source = the real client)."""

    source_address: str
    source_port: int
    destination_address: str
    destination_port: int


@dataclass(frozen=True, slots=True)
class SSLFacts:
    """The client's TLS connection, as reported in the ``Auth-SSL-*`` headers.

    ``verify`` is None when ``ssl_verify_client`` is off (then no certificate facts are
    reported); otherwise ``SUCCESS``, ``NONE`` or ``FAILED:reason``.  ``certificate`` is
    the PEM of the client certificate, given only with ``auth_http_pass_client_cert``.
    """

    protocol: str
    cipher: str
    verify: str | None = None
    subject: str | None = None
    issuer: str | None = None
    serial: str | None = None
    fingerprint: str | None = None
    certificate: str | None = None


@dataclass(frozen=True, slots=True)
class AuthFacts:
    """One authentication request.

    ``method`` is ``plain`` (PLAIN, LOGIN, IMAP LOGIN, POP3 USER/PASS), ``apop``,
    ``cram-md5``, ``external``, ``none`` (SMTP relay without authentication),
    ``xoauth2`` or ``oauthbearer`` (OAuth 2.0: ``password`` is the bearer token, and
    ``sasl_host``/``sasl_port`` what an OAUTHBEARER client named of the server).
    ``password`` is what the client sent (for apop and cram-md5, the digest);
    ``salt`` (with its CRLF) accompanies apop and cram-md5.  ``client_host`` is the
    SMTP client's resolved name (or ``[UNAVAILABLE]``/``[TEMPUNAVAIL]``), None for
    IMAP and POP3.  ``smtp_helo``/``smtp_from``/``smtp_to`` are set for ``none``.
    ``imap_id``: the IMAP client's ID parameter list as it sent it (RFC 2971), given with
    ``auth_http_pass_imap_id on``.
    """

    protocol: str
    method: str
    login: bytes
    password: bytes = field(repr=False)
    login_attempt: int
    client_ip: str
    salt: bytes | None = None
    sasl_host: bytes | None = None
    sasl_port: bytes | None = None
    imap_id: bytes | None = None
    client_host: str | None = None
    proxy_protocol: ProxyAddresses | None = None
    smtp_helo: bytes | None = None
    smtp_from: bytes | None = None
    smtp_to: bytes | None = None
    ssl: SSLFacts | None = None
