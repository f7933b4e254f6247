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

With ``ssl_session_store``, ``do_handshake()`` may raise ``SessionLookup``: the caller
fetches the session, ``tls.resume_session(der_or_None)`` and calls ``do_handshake()``
again; after the handshake ``tls.new_sessions()`` gives the sessions to store.

This package knows no mail protocol.
"""

from mailgate.tls.context import (
    ClientContexts,
    TLSClientContext,
    TLSContext,
    build_client_contexts,
    build_contexts,
)
from mailgate.tls.errors import ConfigError, SessionLookup, TLSClosed, TLSError, TLSHandshakeError
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
    "SessionLookup",
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
