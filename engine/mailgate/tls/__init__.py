"""Server TLS for mailgate through its own OpenSSL bindings (``mailgate._openssl``).

In the master, before forking::

    zones = SessionZones()
    zones.configure(config)                  # shared session caches
    contexts = build_contexts(config, zones)  # one TLSContext per TLS server

Per connection::

    tls = TLSConnection(contexts[i])
    tls.feed(ciphertext); tls.do_handshake(); transport.write(tls.data_to_send())
    (or read into tls.input and tls.feed_input(nbytes): no copy of the bytes in Python)
    tls.check_client_certificate(); tls.client_certificate()
    n = tls.recv_into(buf); tls.send(plaintext)
    tls.shutdown() / tls.abort(); tls.close()
"""

from mailgate.tls.connection import (
    CertificateCheck,
    CertificateVerdict,
    ClientCertificate,
    TLSConnection,
)
from mailgate.tls.context import TLSContext, build_contexts
from mailgate.tls.errors import ConfigError, TLSClosed, TLSError, TLSHandshakeError
from mailgate.tls.zones import SessionZone, SessionZones, ZoneStats

__all__ = [
    "CertificateCheck",
    "CertificateVerdict",
    "ClientCertificate",
    "ConfigError",
    "SessionZone",
    "SessionZones",
    "TLSClosed",
    "TLSConnection",
    "TLSContext",
    "TLSError",
    "TLSHandshakeError",
    "ZoneStats",
    "build_contexts",
]
