"""``TLSStream``: one socket's TLS, server or client side, over memory BIOs.

The stream knows no socket and no event loop: ciphertext in (``feed()``, or
``feed_input(n)`` after the transport read into ``input``), plaintext out
(``recv_into()``), ciphertext to send (``data_to_send()``, or ``encrypt(data)``,
all of it at once: usually several records per transport write), and what
happened as return values and exceptions (handshake done, ``TLSClosed``,
``TLSError``).  Each call is one call into C however many records it covers, so
the Python work per record stays small.

The side comes from the context: a ``TLSContext`` (a mail server's) makes a
server-side stream, a ``TLSClientContext`` a client-side one (to a backend, to an
auth server).  After the handshake the facts are properties (version, cipher,
reuse, SNI name, certificates); ``check_client_certificate()`` applies nginx's
``ssl_verify_client`` policy (ngx_mail_verify_cert() in ngx_mail_handler.c) and
``client_certificate()`` gives what auth_http sends (Auth-SSL-*);
``check_server_certificate()`` is the client side's verdict on the server
(ngx_ssl_check_host() and the verify result, as ngx_stream_proxy_module takes it).
"""

from __future__ import annotations

import enum
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

from mailgate.tls._binding import ffi, lib, ssl_error_text, text
from mailgate.tls.context import TLSClientContext, TLSContext
from mailgate.tls.errors import SessionLookup, TLSClosed, TLSError, TLSHandshakeError

__all__ = ["CertificateCheck", "CertificateVerdict", "ClientCertificate", "TLSSession",
           "TLSStream"]

Log = Callable[[str, str], None]  # (nginx level, message)

_NONE = lib.SSL_ERROR_NONE
_WANT_READ = lib.SSL_ERROR_WANT_READ
_WANT_WRITE = lib.SSL_ERROR_WANT_WRITE
_ZERO_RETURN = lib.SSL_ERROR_ZERO_RETURN
_DONE_STORE_FAILED = lib.MG_DONE_STORE_FAILED
_FEED_FAILED = lib.MG_FEED_FAILED
_RENEGOTIATION = lib.MG_RENEGOTIATION
_WANT_LOOKUP = lib.SSL_ERROR_WANT_CLIENT_HELLO_CB

# ngx_ssl_verify_error_optional(): what optional_no_ca forgives.
_NO_CA_ERRORS = frozenset(
    {
        lib.X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
        lib.X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
        lib.X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        lib.X509_V_ERR_CERT_UNTRUSTED,
        lib.X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
    }
)


def _failure(code: int, what: str, error_class: type[TLSError] = TLSError) -> TLSError:
    """ngx_ssl_connection_error(): the message and the level it is logged at."""
    level = "crit"
    if code == lib.SSL_ERROR_SSL and lib.mg_error_is_client_caused(lib.ERR_peek_last_error()):
        level = "info"
    return error_class(what + ssl_error_text(), level)


def _peer_closed(code: int) -> bool:
    # a clean close, or a failure OpenSSL left no reason for: the peer went away
    return code == _ZERO_RETURN or lib.ERR_peek_error() == 0


class CertificateVerdict(enum.Enum):
    """What the session does after the handshake (ngx_mail_verify_cert())."""

    OK = "ok"
    #: send the protocol's "SSL certificate error" line and close
    CERT_ERROR = "cert_error"
    #: send the protocol's "No required SSL certificate" line and close
    NO_CERT = "no_cert"


@dataclass(frozen=True)
class CertificateCheck:
    """The outcome of ``check_client_certificate()``.

    On a failure ``message`` is the line to log at info, e.g.
    ``client SSL certificate verify error: (18:self-signed certificate)``.
    """

    verdict: CertificateVerdict
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is CertificateVerdict.OK


_CHECK_OK = CertificateCheck(CertificateVerdict.OK)

INPUT_SIZE = 32 * 1024


class _ThreadInput(threading.local):
    """The ciphertext read buffer of one thread, shared by every connection made on it.

    An event loop calls ``get_buffer()`` and ``buffer_updated()`` back to back and
    the bytes are copied into the connection's BIO at once, so no connection holds a
    read buffer while idle.  Per thread, not per process: both uvloop and asyncio read
    the socket with the GIL released, so loops in two threads would read into one
    buffer at the same time.
    """

    def __init__(self) -> None:
        data = bytearray(INPUT_SIZE)
        self.view = memoryview(data)
        self.address = ffi.from_buffer(data)


_thread_input = _ThreadInput()


@dataclass(frozen=True)
class ClientCertificate:
    """The client certificate as auth_http reports it: the ``Auth-SSL-*`` values of
    ngx_mail_auth_http_create_request() in src/mail/ngx_mail_auth_http_module.c,
    from ngx_ssl_get_client_verify(), ngx_ssl_get_subject_dn() and their siblings in
    src/event/ngx_event_openssl.c.

    ``verify`` is ``SUCCESS``, ``FAILED:<reason>`` or ``NONE``; the other
    fields are None without a certificate.  ``pem`` is the PEM text, not yet
    escaped for the header.
    """

    verify: str
    subject: str | None = None  #: RFC 2253
    issuer: str | None = None  #: RFC 2253
    serial: str | None = None  #: upper-case hex
    fingerprint: str | None = None  #: SHA-1 of the DER, lower-case hex
    pem: str | None = None


def _bio_text(write) -> str:
    """Run ``write(bio)`` on a memory BIO and return what it wrote; ``write``
    returns whether it succeeded."""
    bio = lib.BIO_new(lib.BIO_s_mem())
    if bio == ffi.NULL:
        raise MemoryError
    try:
        if not write(bio):
            raise TLSError("writing certificate text failed" + ssl_error_text(), "alert")
        size = lib.BIO_ctrl_pending(bio)
        buf = ffi.new("char[]", size)
        lib.BIO_read(bio, buf, size)
        return ffi.buffer(buf, size)[:].decode("utf-8", "replace")
    finally:
        lib.BIO_free(bio)


class TLSSession:
    """A client-side TLS session to offer again to the same server (``SSL_SESSION``)."""

    __slots__ = ("_session",)

    def __init__(self, session) -> None:
        self._session = ffi.gc(session, lib.SSL_SESSION_free)

    @property
    def resumable(self) -> bool:
        return bool(lib.SSL_SESSION_is_resumable(self._session))


class TLSStream:
    """The TLS of one connection: server side with a ``TLSContext``, client side with a
    ``TLSClientContext`` (then ``server_name`` goes in SNI, ``verify_name`` is the name
    the server's certificate must carry, and ``session`` is offered for resumption).

    Lifecycle: ``feed()`` what the peer sent and call ``do_handshake()`` until it
    returns True, writing ``data_to_send()`` to the peer after every call (a client
    calls it once before anything came, for its ClientHello); then
    ``recv_into()``/``encrypt()``; at the end ``shutdown()`` (close_notify; True once
    the peer's close_notify arrived too, nginx waits up to 3 s for it) or ``abort()``
    after errors and timeouts, and finally ``close()``, which frees the SSL object.
    Not thread-safe; any event loop.

    ``log(level, message)`` receives what the TLS layer itself logs during a
    handshake: nginx's rate-limited warning when the shared session cache is
    full.  Failures are raised instead, for the session to log.
    """

    __slots__ = ("_conn", "_input_address", "_log", "_lookup", "_nbytes", "_pending",
                 "context", "handshake_done", "input")

    def __init__(self, context: TLSContext | TLSClientContext, *, log: Log | None = None,
                 server_name: str | None = None, verify_name: str | None = None,
                 session: TLSSession | None = None):
        conn = lib.mg_conn_new(context._ctx, 1 if context.server_side else 0)
        if conn == ffi.NULL:
            raise MemoryError("SSL_new() failed")
        self._conn = ffi.gc(conn, lib.mg_conn_free)
        if not context.server_side:
            self._client_setup(server_name, verify_name, session)
        self.context = context
        self._log = log
        self._nbytes = ffi.new("size_t *")
        self._pending: Callable[[], BaseException] | None = None
        self._lookup = False  # paused for a SessionLookup not answered yet
        self.handshake_done = False
        #: where the transport reads this connection's ciphertext for feed_input() and
        #: do_handshake(n): the buffer of the thread the connection was made on
        self.input: memoryview = _thread_input.view
        self._input_address = _thread_input.address

    def _client_setup(self, server_name: str | None, verify_name: str | None,
                      session: TLSSession | None) -> None:
        ssl = lib.mg_conn_ssl(self._conn)
        if not lib.mg_conn_set_server_name(
                self._conn, server_name.encode("idna") if server_name else ffi.NULL,
                verify_name.encode() if verify_name else ffi.NULL):
            lib.ERR_clear_error()
            raise TLSError("SSL_set_tlsext_host_name(\"%s\") failed" % server_name)
        if session is not None and not lib.SSL_set_session(ssl, session._session):
            lib.ERR_clear_error()  # a session this context cannot use: a full handshake

    # ---- bytes in and out ----------------------------------------------------

    def feed(self, data) -> None:
        """Hand over ciphertext received from the peer (any bytes-like)."""
        if not lib.mg_conn_feed(self._conn, ffi.from_buffer(data), len(data)):
            raise MemoryError("BIO_write() failed")

    def feed_input(self, nbytes: int) -> None:
        """Hand over the first ``nbytes`` of ``input``, where the transport read them."""
        if not lib.mg_conn_feed(self._conn, self._input_address, nbytes):
            raise MemoryError("BIO_write() failed")

    def feed_eof(self) -> bool:
        """The transport reached end of input: no more ciphertext will come.

        True when nothing is left to read, so that ``recv_into()`` could only
        raise ``TLSClosed``.
        """
        return bool(lib.mg_conn_feed_eof(self._conn))

    def pending(self) -> int:
        """Bytes of ciphertext waiting to be written."""
        return lib.mg_conn_pending(self._conn)

    def has_input(self) -> bool:
        """Whether ``recv_into()`` has anything to work on (data, end of input or a
        failure to report); False means it would return 0."""
        return self._pending is not None or bool(lib.mg_conn_has_input(self._conn))

    def data_to_send(self) -> bytes | bytearray:
        """All ciphertext waiting to be written, in one buffer (may be empty)."""
        size = lib.mg_conn_pending(self._conn)
        return self._take(size) if size else b""

    def _take(self, size: int) -> bytearray:
        out = bytearray(size)
        lib.mg_conn_take(self._conn, ffi.from_buffer(out), size)
        return out

    # ---- handshake -------------------------------------------------------------

    @property
    def _ssl(self):
        return lib.mg_conn_ssl(self._conn) if self._conn is not None else ffi.NULL

    def do_handshake(self, received: int = 0) -> bool:
        """Advance the handshake with the ciphertext fed so far, after feeding the
        first ``received`` bytes of ``input`` (as ``feed_input()``, in the same call).

        True once it is complete; False when more input is needed (or the answer
        to a ``SessionLookup``).  Raises ``SessionLookup`` once when the handshake
        pauses for the external session store; ``TLSHandshakeError`` with nginx's
        message and level on failure, the alert for the peer, if any, is then in
        ``data_to_send()``.
        """
        code = lib.mg_conn_handshake(self._conn, self._input_address, received)
        if code == _NONE:
            self.handshake_done = True
            return True
        if code in (_WANT_READ, _WANT_WRITE):
            return False
        if code == _WANT_LOOKUP:
            if self._lookup:
                return False
            self._lookup = True
            session_id = ffi.new("unsigned char[]", lib.MG_SESSION_ID_MAX)
            raise SessionLookup(ffi.buffer(session_id, lib.mg_conn_lookup_id(self._conn, session_id))[:])
        if code == _DONE_STORE_FAILED:
            self.handshake_done = True
            if self._log:
                zone = self.context.session_zone
                self._log(
                    "warn",
                    f'could not allocate new session in SSL session shared cache "{zone.name}"',
                )
            return True
        if code == _FEED_FAILED:
            raise MemoryError("BIO_write() failed")
        if _peer_closed(code):
            lib.ERR_clear_error()
            raise TLSHandshakeError("peer closed connection in SSL handshake", "info")
        raise _failure(code, "SSL_do_handshake() failed", TLSHandshakeError)

    def resume_session(self, der: bytes | None) -> None:
        """The answer to a ``SessionLookup``: the session's DER encoding, or None when
        the store has none; the next ``do_handshake()`` goes on with it (a session
        that does not fit this context is a full handshake)."""
        self._lookup = False
        lib.mg_conn_lookup_done(self._conn, der if der else ffi.NULL, len(der) if der else 0)

    def new_sessions(self) -> list[tuple[bytes, bytes]]:
        """The (session ID, DER) of each session this handshake created for the
        external session store, taken once."""
        sessions: list[tuple[bytes, bytes]] = []
        if self.context.session_store is None:
            return sessions
        session_id = ffi.new("unsigned char[]", lib.MG_SESSION_ID_MAX)
        id_len = ffi.new("unsigned int *")
        der = ffi.new("unsigned char[]", lib.MG_SESSION_DER_MAX)
        while n := lib.mg_conn_take_session(self._conn, session_id, id_len, der, len(der)):
            sessions.append((ffi.buffer(session_id, id_len[0])[:], ffi.buffer(der, n)[:]))
        return sessions

    # ---- application data ------------------------------------------------------

    def recv_into(self, buffer) -> int:
        """Decrypt into a writable byte buffer; the number of bytes, 0 when
        more ciphertext is needed.

        Reads as many records as fit.  Raises ``TLSClosed`` at the peer's
        close_notify (or the end of input), ``TLSError`` on a failure; when
        data came before either, the data is returned first and the
        exception is raised by the next call.
        """
        if self._pending is not None:
            raise self._pending()
        # The buffer export must not outlive the call: an exception's
        # traceback would otherwise keep it in a frame.
        code = lib.mg_conn_read(
            self._conn, ffi.from_buffer(buffer, require_writable=True), len(buffer), self._nbytes
        )
        n = self._nbytes[0]
        if code in (_NONE, _WANT_READ, _WANT_WRITE):
            return n
        pending: Callable[[], BaseException]
        if code == _RENEGOTIATION:
            # the no_renegotiation alert is in data_to_send(): send it, then close
            # (docs/differences.md#tls)
            pending = functools.partial(TLSError, "SSL renegotiation disabled", "info")
        elif _peer_closed(code):
            lib.ERR_clear_error()
            pending = TLSClosed
        else:
            failure = _failure(code, "SSL_read() failed")
            pending = functools.partial(TLSError, failure.message, failure.level)
        if n:
            # kept as a factory, not an exception: a raised exception's
            # traceback would tie this object into a reference cycle
            self._pending = pending
            return n
        raise pending()

    def encrypt(self, data) -> bytearray:
        """Encrypt plaintext (any bytes-like): the records to write now, what was
        waiting before (e.g. what the handshake left) included."""
        code = lib.mg_conn_write(self._conn, ffi.from_buffer(data), len(data), self._nbytes)
        if code == _NONE:
            return self._take(self._nbytes[0])
        # after the peer's close_notify OpenSSL says "zero return" where the
        # write really failed
        raise _failure(lib.SSL_ERROR_SYSCALL if code == _ZERO_RETURN else code, "SSL_write() failed")

    # ---- closing -----------------------------------------------------------------

    def shutdown(self) -> bool:
        """Send close_notify (queued in ``data_to_send()``).

        True when nothing more is to be waited for; False while the peer's
        close_notify has not arrived (feed its data and call again).  After a
        failure or the peer's close, nothing is sent, as in nginx.
        """
        rc = lib.mg_conn_shutdown(self._conn, 0)
        if rc >= 0:
            return bool(rc)
        raise _failure(-rc, "SSL_shutdown() failed")

    def abort(self) -> None:
        """Quiet shutdown, for errors and timeouts: no alert is sent (and OpenSSL's
        error queue is left empty)."""
        lib.mg_conn_shutdown(self._conn, 1)

    def close(self) -> None:
        """Free the SSL object now; the connection is unusable afterwards."""
        if self._conn is not None:
            ffi.release(self._conn)
            self._conn = None

    # ---- facts after the handshake -----------------------------------------------

    @property
    def protocol(self) -> str:
        """The negotiated version, e.g. ``TLSv1.3`` (Auth-SSL-Protocol)."""
        return text(lib.SSL_get_version(self._ssl))

    @property
    def cipher(self) -> str:
        """The OpenSSL name of the negotiated cipher (Auth-SSL-Cipher)."""
        cipher = lib.SSL_get_current_cipher(self._ssl)
        return text(lib.SSL_CIPHER_get_name(cipher)) if cipher != ffi.NULL else ""

    @property
    def server_name(self) -> str | None:
        """The SNI host name the client sent, if any."""
        name = lib.SSL_get_servername(self._ssl, lib.TLSEXT_NAMETYPE_host_name)
        return text(name) if name != ffi.NULL else None

    @property
    def alpn_protocol(self) -> str | None:
        """The negotiated ALPN protocol, if the client offered ALPN."""
        data = ffi.new("const unsigned char **")
        size = ffi.new("unsigned int *")
        lib.SSL_get0_alpn_selected(self._ssl, data, size)
        return ffi.buffer(data[0], size[0])[:].decode("ascii", "replace") if size[0] else None

    @property
    def session_reused(self) -> bool:
        return bool(lib.SSL_session_reused(self._ssl))

    @property
    def verify_result(self) -> int:
        """OpenSSL's X509 verification result (0 when no certificate was sent)."""
        return lib.SSL_get_verify_result(self._ssl)

    def peer_common_name(self) -> str | None:
        """The CN of the client certificate, if one was presented (PROXY v2 SSL_CN)."""
        cert = lib.SSL_get1_peer_certificate(self._ssl)
        if cert == ffi.NULL:
            return None
        try:
            buf = ffi.new("char[]", 1024)
            size = lib.X509_NAME_get_text_by_NID(lib.X509_get_subject_name(cert), lib.NID_commonName,
                                                 buf, len(buf))
            return ffi.buffer(buf, size)[:].decode("utf-8", "replace") if size >= 0 else ""
        finally:
            lib.X509_free(cert)

    def server_certificate_algorithms(self) -> tuple[str | None, str | None]:
        """The signature and key algorithms of the certificate served on this connection.

        As the PROXY v2 SSL_SIG_ALG and SSL_KEY_ALG TLVs carry them: ``RSA-SHA256``,
        ``RSA2048`` / ``EC256``.
        """
        cert = lib.SSL_get_certificate(self._ssl)
        if cert == ffi.NULL:
            return None, None
        sig = lib.OBJ_nid2sn(lib.X509_get_signature_nid(cert))
        key = lib.X509_get0_pubkey(cert)
        key_alg = None
        if key != ffi.NULL:
            key_alg = "%s%d" % (text(lib.EVP_PKEY_get0_type_name(key)), lib.EVP_PKEY_get_bits(key))
        return (text(sig) if sig != ffi.NULL else None), key_alg

    def session(self) -> TLSSession | None:
        """The client side's session, to offer in the next connection to this server."""
        session = lib.SSL_get1_session(self._ssl)
        return TLSSession(session) if session != ffi.NULL else None

    def check_server_certificate(self, name: str | None) -> str | None:
        """The client side's verdict on the server's certificate, after the handshake:
        None when it is good, else nginx's reason (ngx_stream_proxy_ssl_handshake():
        ``upstream SSL certificate verify error: (N:text)`` or ``upstream SSL
        certificate does not match "NAME"``).  The name was checked during the
        handshake when the stream was made with ``verify_name``."""
        rc = lib.SSL_get_verify_result(self._ssl)
        if rc == lib.X509_V_ERR_HOSTNAME_MISMATCH:
            return f'upstream SSL certificate does not match "{name}"'
        if rc != lib.X509_V_OK:
            reason = text(lib.X509_verify_cert_error_string(rc))
            return f"upstream SSL certificate verify error: ({rc}:{reason})"
        cert = lib.SSL_get1_peer_certificate(self._ssl)
        if cert == ffi.NULL:
            return "upstream sent no required SSL certificate"
        lib.X509_free(cert)
        return None

    def check_client_certificate(self) -> CertificateCheck:
        """nginx's post-handshake policy for ``ssl_verify_client``.

        On failure the session is removed from the caches, so that it cannot
        be resumed, and the verdict tells which line the protocol sends.
        """
        mode = self.context.verify_client
        if mode == "off":
            return _CHECK_OK
        rc = lib.SSL_get_verify_result(self._ssl)
        if rc != lib.X509_V_OK and (mode != "optional_no_ca" or rc not in _NO_CA_ERRORS):
            self._forget_session()
            reason = text(lib.X509_verify_cert_error_string(rc))
            return CertificateCheck(
                CertificateVerdict.CERT_ERROR, f"client SSL certificate verify error: ({rc}:{reason})"
            )
        if mode == "on":
            cert = lib.SSL_get1_peer_certificate(self._ssl)
            if cert == ffi.NULL:
                self._forget_session()
                return CertificateCheck(CertificateVerdict.NO_CERT, "client sent no required SSL certificate")
            lib.X509_free(cert)
        return _CHECK_OK

    def _forget_session(self) -> None:
        lib.mg_conn_drop_sessions(self._conn)
        session = lib.SSL_get0_session(self._ssl)
        if session != ffi.NULL:
            self.context._forget_session(session)

    def client_certificate(self) -> ClientCertificate:
        """The Auth-SSL-Verify/Subject/Issuer/Serial/Fingerprint/Cert facts."""
        cert = lib.SSL_get1_peer_certificate(self._ssl)
        if cert == ffi.NULL:
            return ClientCertificate("NONE")
        try:
            rc = lib.SSL_get_verify_result(self._ssl)
            verify = "SUCCESS" if rc == lib.X509_V_OK else "FAILED:" + text(lib.X509_verify_cert_error_string(rc))
            digest = ffi.new("unsigned char[]", lib.EVP_MAX_MD_SIZE)
            size = ffi.new("unsigned int *")
            if not lib.X509_digest(cert, lib.EVP_sha1(), digest, size):
                raise TLSError("X509_digest() failed" + ssl_error_text(), "alert")
            subject = lib.X509_get_subject_name(cert)
            issuer = lib.X509_get_issuer_name(cert)
            return ClientCertificate(
                verify=verify,
                subject=_bio_text(lambda bio: lib.X509_NAME_print_ex(bio, subject, 0, lib.XN_FLAG_RFC2253) >= 0),
                issuer=_bio_text(lambda bio: lib.X509_NAME_print_ex(bio, issuer, 0, lib.XN_FLAG_RFC2253) >= 0),
                serial=_bio_text(lambda bio: lib.i2a_ASN1_INTEGER(bio, lib.X509_get_serialNumber(cert)) >= 0),
                fingerprint=ffi.buffer(digest, size[0])[:].hex(),
                pem=_bio_text(lambda bio: lib.PEM_write_bio_X509(bio, cert) == 1),
            )
        finally:
            lib.X509_free(cert)
