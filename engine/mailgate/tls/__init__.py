"""TLS for mailgate through its own OpenSSL bindings (``mailgate._openssl``).

In the master, before forking::

    zones = SessionZones()
    zones.configure(config)                  # shared session caches
    contexts = build_contexts(config, zones)  # one TLSContext per TLS server

Per connection (server side; a ``TLSClientContext`` makes a client-side stream)::

    tls = TLSStream(contexts[i])
    tls.feed(ciphertext); tls.do_handshake(); transport.write(tls.data_to_send())
    (or read into tls.input and tls.feed_input(nbytes): no copy of the bytes in Python)
    tls.check_client_certificate(); tls.client_certificate()
    n = tls.recv_into(buf); transport.write(tls.encrypt(plaintext))
    tls.shutdown() / tls.abort(); tls.close()

This package knows no mail protocol.
"""

from mailgate.tls.context import (
    ClientContexts,
    TLSClientContext,
    TLSContext,
    build_client_contexts,
    build_contexts,
)
from mailgate.tls.errors import ConfigError, TLSClosed, TLSError, TLSHandshakeError
from mailgate.tls.stream import (
    CertificateCheck,
    CertificateVerdict,
    ClientCertificate,
    TLSSession,
    TLSStream,
)
from mailgate.tls.zones import SessionZone, SessionZones, ZoneStats

__all__ = [
    "CertificateCheck",
    "CertificateVerdict",
    "ClientCertificate",
    "ClientContexts",
    "ConfigError",
    "SessionZone",
    "SessionZones",
    "TLSClientContext",
    "TLSClosed",
    "TLSContext",
    "TLSError",
    "TLSHandshakeError",
    "TLSSession",
    "TLSStream",
    "ZoneStats",
    "build_client_contexts",
    "build_contexts",
]
