"""``TLSContext``: one mail server's SSL_CTX, built as nginx builds it.

The construction follows ngx_mail_ssl_merge_conf() in
src/mail/ngx_mail_ssl_module.c and the functions it calls in
src/event/ngx_event_openssl.c, in order (docs/nginx-behaviour.md#tls-contexts):
options and modes (ngx_ssl_create()), protocols, ALPN
(ngx_mail_ssl_alpn_select()), ciphers, certificate/key pairs, certificate
compression, client verification, DH parameters, ECDH curves, the session
cache and its ID context, tickets and ticket keys, and ``ssl_conf_command``
last (ngx_ssl_conf_commands()), so that it overrides everything before it.
Every failure is a ``ConfigError`` worded as nginx words it.  The contexts are
built once the whole configuration is merged, not during the ssl module's
merge as in nginx (docs/differences.md#configuration).
"""

from __future__ import annotations

import functools
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailgate.config import ConfigMessage, ServerConfig
from mailgate.config.lexer import ENCODING
from mailgate.config.modules.mail_ssl import TICKET_KEY_SIZES
from mailgate.oserror import os_error_text
from mailgate.tls._binding import ffi, lib, ssl_error_text
from mailgate.tls._keys import (
    LoadFailure,
    load_ca_certificates,
    load_certificate_chain,
    load_crls,
    load_private_key,
    shown,
)
from mailgate.tls.errors import ConfigError
from mailgate.tls.zones import SessionZone, SessionZones

__all__ = ["ClientContexts", "TLSClientContext", "TLSContext", "build_client_contexts",
           "build_contexts"]

OnMessage = Callable[[ConfigMessage], None]

_PROTOCOL_OPTIONS = {
    "SSLv2": lib.SSL_OP_NO_SSLv2,
    "SSLv3": lib.SSL_OP_NO_SSLv3,
    "TLSv1": lib.SSL_OP_NO_TLSv1,
    "TLSv1.1": lib.SSL_OP_NO_TLSv1_1,
    "TLSv1.2": lib.SSL_OP_NO_TLSv1_2,
    "TLSv1.3": lib.SSL_OP_NO_TLSv1_3,
}
_ALL_PROTOCOL_OPTIONS = functools.reduce(operator.or_, _PROTOCOL_OPTIONS.values())

# ngx_mail_ssl_sess_id_ctx: the first input of every session ID context.
_SESSION_ID_CONTEXT = b"MAIL"


def _sha1(digest_fn, obj) -> bytes:
    out = ffi.new("unsigned char[]", lib.EVP_MAX_MD_SIZE)
    size = ffi.new("unsigned int *")
    if not digest_fn(obj, lib.EVP_sha1(), out, size):
        raise ConfigError(f"{digest_fn.__name__}() failed" + ssl_error_text())
    return ffi.buffer(out, size[0])[:]


def _read_file(path: str, where: tuple[str, int] | None, size: int = 4096) -> bytearray:
    """Up to ``size`` bytes of a key file."""
    try:
        with open(path, "rb", buffering=0) as f:
            return bytearray(f.read(size))
    except OSError as exc:
        file, line = where or (None, None)
        raise ConfigError(f'open() "{path}" failed {os_error_text(exc)}', file, line) from None


def _read_ticket_key(path: str, where: tuple[str, int] | None) -> bytearray:
    """The 48 or 80 bytes of an ``ssl_session_ticket_key`` file.

    The configuration checked the size already; this only fails when the file
    changed since.
    """
    file, line = where or (None, None)
    data = _read_file(path, where, max(TICKET_KEY_SIZES) + 1)
    if len(data) not in TICKET_KEY_SIZES:
        data[:] = b"\0" * len(data)
        raise ConfigError(f'"{path}" must be 48 or 80 bytes', file, line)
    return data


class _Context:
    """What a server and a client context share: the ``SSL_CTX``, its protocols,
    ciphers, certificate/key pairs, trusted certificates and CRL, ``ssl_conf_command``.

    The steps take plain values, so that the server's ``ssl_*`` directives and the
    backend's ``proxy_ssl_*`` ones (ngx_stream_proxy_module) build their contexts
    the same way.
    """

    #: OpenSSL flags of the SSL_CONF commands this side accepts
    _conf_flags = 0
    #: ``ssl_session_store`` (a server's ``SessionStoreSetting``)
    session_store = None

    def __init__(self, conf_prefix: str, on_message: OnMessage | None) -> None:
        self._conf_prefix = conf_prefix
        self._on_message = on_message
        self._cert_digests: list[bytes] = []

    def _message(self, level: str, text: str) -> None:
        if self._on_message is not None:
            self._on_message(ConfigMessage(level, text))

    # ---- the steps, in nginx's order ------------------------------------------

    def _create(self, protocols: Sequence[str]) -> None:
        ctx = lib.SSL_CTX_new(lib.TLS_method())
        if ctx == ffi.NULL:
            raise ConfigError("SSL_CTX_new() failed" + ssl_error_text())
        self._ctx = ffi.gc(ctx, lib.SSL_CTX_free)
        if not lib.mg_ctx_attach(ctx):
            raise ConfigError("SSL_CTX_set_ex_data() failed" + ssl_error_text())

        lib.SSL_CTX_set_options(ctx, lib.mg_base_options())

        # The SSL_OP_NO_* options restrict versions; the range stays open.
        lib.SSL_CTX_clear_options(ctx, _ALL_PROTOCOL_OPTIONS)
        disabled = 0
        for name, option in _PROTOCOL_OPTIONS.items():
            if name not in protocols:
                disabled |= option
        lib.SSL_CTX_set_options(ctx, disabled)
        lib.SSL_CTX_set_min_proto_version(ctx, 0)
        lib.SSL_CTX_set_max_proto_version(ctx, lib.TLS1_3_VERSION)

        lib.SSL_CTX_set_mode(ctx, lib.SSL_MODE_RELEASE_BUFFERS | lib.SSL_MODE_NO_AUTO_CHAIN)
        lib.SSL_CTX_set_read_ahead(ctx, 1)

    def _set_ciphers(self, ciphers: str, prefer_server: bool) -> None:
        if not lib.SSL_CTX_set_cipher_list(self._ctx, ciphers.encode(*ENCODING)):
            raise ConfigError(f'SSL_CTX_set_cipher_list("{ciphers}") failed' + ssl_error_text())
        if prefer_server:
            lib.SSL_CTX_set_options(self._ctx, lib.SSL_OP_CIPHER_SERVER_PREFERENCE)

    def _use_certificates(self, pairs, passwords) -> None:
        """Each (certificate file, key) pair with its chain; ``passwords`` for the keys."""
        ctx = self._ctx
        for cert, key in pairs:
            try:
                chain = load_certificate_chain(cert)
            except LoadFailure as failure:
                raise ConfigError(
                    f'cannot load certificate "{shown(cert)}": {failure}' + ssl_error_text()
                ) from None
            if not lib.SSL_CTX_use_certificate(ctx, chain[0]):
                raise ConfigError(f'SSL_CTX_use_certificate("{shown(cert)}") failed' + ssl_error_text())
            # the chain belongs to the certificate just set, so that RSA and
            # ECDSA certificates each keep their own
            if not lib.SSL_CTX_clear_chain_certs(ctx) or not all(
                lib.SSL_CTX_add1_chain_cert(ctx, c) for c in chain[1:]
            ):
                raise ConfigError(f'SSL_CTX_set0_chain("{shown(cert)}") failed' + ssl_error_text())
            # nginx walks its certificate list newest first
            self._cert_digests.insert(0, _sha1(lib.X509_digest, chain[0]))

            try:
                pkey = load_private_key(key, passwords, self._message)
            except LoadFailure as failure:
                raise ConfigError(
                    f'cannot load certificate key "{shown(key)}": {failure}' + ssl_error_text()
                ) from None
            if not lib.SSL_CTX_use_PrivateKey(ctx, pkey):
                raise ConfigError(f'SSL_CTX_use_PrivateKey("{shown(key)}") failed' + ssl_error_text())

    @staticmethod
    def _add_to_store(store, path: str, what: str = "certificate",
                      load: Callable[[str], list] = load_ca_certificates,
                      add: Callable[..., int] = lib.X509_STORE_add_cert) -> list:
        """Load every item of ``path`` (certificates, or CRLs with ``load_crls`` and
        ``X509_STORE_add_crl``) into ``store``; return them."""
        try:
            items = load(path)
        except LoadFailure as failure:
            raise ConfigError(f'cannot load {what} "{path}": {failure}' + ssl_error_text()) from None
        for item in items:
            if not add(store, item):
                raise ConfigError(f'{add.__name__}("{path}") failed' + ssl_error_text())
        return items

    def _apply_conf_commands(self, commands: Sequence[tuple[str, str]]) -> None:
        if not commands:
            return
        cctx = lib.SSL_CONF_CTX_new()
        if cctx == ffi.NULL:
            raise ConfigError("SSL_CONF_CTX_new() failed" + ssl_error_text())
        try:
            lib.SSL_CONF_CTX_set_flags(
                cctx,
                lib.SSL_CONF_FLAG_FILE
                | self._conf_flags
                | lib.SSL_CONF_FLAG_CERTIFICATE
                | lib.SSL_CONF_FLAG_SHOW_ERRORS,
            )
            lib.SSL_CONF_CTX_set_ssl_ctx(cctx, self._ctx)
            for name, value in commands:
                # the configuration's bytes as read, as nginx passes them to OpenSSL
                kind = lib.SSL_CONF_cmd_value_type(cctx, name.encode(*ENCODING))
                if kind in (lib.SSL_CONF_TYPE_FILE, lib.SSL_CONF_TYPE_DIR):
                    value = os.path.join(self._conf_prefix, value)
                if lib.SSL_CONF_cmd(cctx, name.encode(*ENCODING), value.encode(*ENCODING)) <= 0:
                    raise ConfigError(f'SSL_CONF_cmd("{name}", "{value}") failed' + ssl_error_text())
            if lib.SSL_CONF_CTX_finish(cctx) != 1:
                raise ConfigError("SSL_CONF_finish() failed" + ssl_error_text())
        finally:
            lib.SSL_CONF_CTX_free(cctx)

    def _trust(self, trusted: str | None, crl: str | None, depth: int,
               system: bool = False) -> None:
        """Verify the peer's chain: the trusted certificates (or with ``system`` and none
        given, the system's), the CRL, the depth."""
        lib.mg_ctx_set_verify(self._ctx, lib.SSL_VERIFY_PEER)
        lib.SSL_CTX_set_verify_depth(self._ctx, depth)
        store = lib.SSL_CTX_get_cert_store(self._ctx)
        if trusted:
            self._add_to_store(store, trusted)
        elif system and not lib.SSL_CTX_set_default_verify_paths(self._ctx):
            raise ConfigError("SSL_CTX_set_default_verify_paths() failed" + ssl_error_text())
        if crl:
            self._add_to_store(store, crl, "CRL", load_crls, lib.X509_STORE_add_crl)
            lib.X509_STORE_set_flags(store, lib.X509_V_FLAG_CRL_CHECK | lib.X509_V_FLAG_CRL_CHECK_ALL)


class TLSContext(_Context):
    """The TLS context of one mail server (``SSL_CTX``).

    ``server`` is a merged ``ServerConfig``; ``zone`` the shared session zone
    its ``ssl_session_cache shared:NAME:SIZE`` names, if any.  Relative paths
    in ``ssl_conf_command`` values that OpenSSL takes as files or directories
    are taken from ``conf_prefix`` (the configuration's directory).  Warnings
    (a feature this OpenSSL lacks, a truncated password) go to ``on_message``.
    Build it in the master before forking: the workers then share its ticket
    keys and builtin cache state copy-on-write, as nginx's do.
    """

    server_side = True
    _conf_flags = lib.SSL_CONF_FLAG_SERVER | lib.SSL_CONF_FLAG_CLIENT

    def __init__(
        self,
        server: ServerConfig,
        zone: SessionZone | None = None,
        *,
        conf_prefix: str | None = None,
        on_message: OnMessage | None = None,
    ):
        super().__init__(conf_prefix if conf_prefix is not None else os.path.dirname(server.file),
                         on_message)
        self.server = server
        self.protocol: str = server.protocol
        self.verify_client: str = server.ssl_verify_client
        self.session_zone: SessionZone | None = None
        self._ca_name_digests: list[bytes] = []
        passwords = server.ssl_password_file.passwords if server.ssl_password_file else None

        try:
            self._create(server.ssl_protocols)
            self._set_alpn(server.protocol)
            self._set_ciphers(server.ssl_ciphers, server.ssl_prefer_server_ciphers)
            self._use_certificates(zip(server.ssl_certificate, server.ssl_certificate_key),
                                   passwords)
            self._compress_certificates(server.ssl_certificate_compression)
            self._verify_clients(server)
            self._set_dhparam(server.ssl_dhparam)
            self._set_ecdh_curve(server.ssl_ecdh_curve)
            self._set_session_cache(server, zone)
            self._set_session_store(server)
            self._set_tickets(server)
            self._apply_conf_commands(server.ssl_conf_command)
        finally:
            lib.ERR_clear_error()

    def _set_alpn(self, protocol: str) -> None:
        name = protocol.encode()
        wire = bytes([len(name)]) + name
        if not lib.mg_ctx_set_alpn(self._ctx, wire, len(wire)):
            raise ConfigError("SSL_CTX_set_alpn_select_cb() failed")

    def _compress_certificates(self, enabled: bool) -> None:
        if enabled and not lib.mg_compress_certs(self._ctx):
            lib.ERR_clear_error()
            self._message("warn", '"ssl_certificate_compression" ignored, not supported')

    def _verify_clients(self, server) -> None:
        mode = server.ssl_verify_client
        if mode == "off":
            return
        ctx = self._ctx
        client_ca = server.ssl_client_certificate
        store = lib.SSL_CTX_get_cert_store(ctx)

        if client_ca:
            names: list = []
            for cert in self._add_to_store(store, client_ca):
                name = lib.X509_get_subject_name(cert)
                if any(lib.X509_NAME_cmp(name, seen) == 0 for seen in names):
                    continue
                names.append(name)
                if not lib.SSL_CTX_add_client_CA(ctx, cert):
                    raise ConfigError(f'SSL_CTX_add_client_CA("{client_ca}") failed' + ssl_error_text())
                self._ca_name_digests.append(_sha1(lib.X509_NAME_digest, name))

        self._trust(server.ssl_trusted_certificate, server.ssl_crl, server.ssl_verify_depth)

    def _set_dhparam(self, path: str | None) -> None:
        if not path:
            return
        bio = lib.BIO_new_file(os.fsencode(path), b"r")
        if bio == ffi.NULL:
            raise ConfigError(f'BIO_new_file("{path}") failed' + ssl_error_text())
        try:
            dh = lib.PEM_read_bio_DHparams(bio, ffi.NULL, ffi.NULL, ffi.NULL)
            if dh == ffi.NULL:
                raise ConfigError(f'PEM_read_bio_DHparams("{path}") failed' + ssl_error_text())
            try:
                if lib.SSL_CTX_set_tmp_dh(self._ctx, dh) != 1:
                    raise ConfigError(f'SSL_CTX_set_tmp_dh("{path}") failed' + ssl_error_text())
            finally:
                lib.DH_free(dh)
        finally:
            lib.BIO_free(bio)

    def _set_ecdh_curve(self, curves: str) -> None:
        lib.SSL_CTX_set_options(self._ctx, lib.SSL_OP_SINGLE_ECDH_USE)
        if curves == "auto":
            return
        if not lib.SSL_CTX_set1_curves_list(self._ctx, ffi.new("char[]", curves.encode(*ENCODING))):
            raise ConfigError(f'SSL_CTX_set1_curves_list("{curves}") failed' + ssl_error_text())

    def _set_session_cache(self, server, zone: SessionZone | None) -> None:
        ctx = self._ctx
        setting = server.ssl_session_cache
        lib.SSL_CTX_set_timeout(ctx, server.ssl_session_timeout)
        self._set_session_id_context()

        if setting.builtin == "off":
            lib.SSL_CTX_set_session_cache_mode(ctx, lib.SSL_SESS_CACHE_OFF)
            return

        if setting.builtin == "none":
            # A session ID is sent but nothing is stored: some clients
            # (Outlook Express) break when told outright that there is no
            # session reuse.
            lib.SSL_CTX_set_session_cache_mode(
                ctx,
                lib.SSL_SESS_CACHE_SERVER
                | lib.SSL_SESS_CACHE_NO_AUTO_CLEAR
                | lib.SSL_SESS_CACHE_NO_INTERNAL_STORE,
            )
            lib.SSL_CTX_sess_set_cache_size(ctx, 1)
            return

        mode = lib.SSL_SESS_CACHE_SERVER
        if setting.builtin == "shared_only" and zone is not None:
            mode |= lib.SSL_SESS_CACHE_NO_INTERNAL
        lib.SSL_CTX_set_session_cache_mode(ctx, mode)
        if setting.builtin == "builtin" and setting.builtin_size is not None:
            lib.SSL_CTX_sess_set_cache_size(ctx, setting.builtin_size)

        if zone is not None:
            if not lib.mg_ctx_set_session_zone(ctx, zone._zone):
                raise ConfigError("SSL_CTX_set_ex_data() failed")
            self.session_zone = zone

    def _set_session_store(self, server) -> None:
        """Sessions the local caches miss are looked up in ``ssl_session_store``.

        Its key material is read here, in the master, like the ticket keys: the
        ``ssl_session_store_key`` file, else the first (encrypting) ticket key file,
        so that every node with the same files reads the others' sessions.
        """
        self.session_store = None
        self.session_store_secret: bytes | None = None
        if server.ssl_session_store is None or server.ssl_session_cache.builtin == "off":
            return
        where = server.location("ssl_session_store")
        if server.ssl_session_store_key:
            secret = _read_file(server.ssl_session_store_key, where)
        else:
            secret = _read_ticket_key(server.ssl_session_ticket_key[0], where)
        self.session_store = server.ssl_session_store
        self.session_store_secret = bytes(secret)
        secret[:] = b"\0" * len(secret)
        if not lib.mg_ctx_set_session_store(self._ctx):
            raise ConfigError("SSL_CTX_set_ex_data() failed")

    def _set_session_id_context(self) -> None:
        # SHA-1 over "MAIL", the certificates and the client CA names: sessions
        # resume only on servers with the same certificates and CA list.
        md = lib.EVP_MD_CTX_new()
        if md == ffi.NULL:
            raise ConfigError("EVP_MD_CTX_new() failed" + ssl_error_text())
        try:
            out = ffi.new("unsigned char[]", lib.EVP_MAX_MD_SIZE)
            size = ffi.new("unsigned int *")
            ok = lib.EVP_DigestInit_ex(md, lib.EVP_sha1(), ffi.NULL)
            for part in (_SESSION_ID_CONTEXT, *self._cert_digests, *self._ca_name_digests):
                ok = ok and lib.EVP_DigestUpdate(md, part, len(part))
            ok = ok and lib.EVP_DigestFinal_ex(md, out, size)
            if not ok:
                raise ConfigError("EVP_DigestUpdate() failed" + ssl_error_text())
        finally:
            lib.EVP_MD_CTX_free(md)
        if not lib.SSL_CTX_set_session_id_context(self._ctx, out, size[0]):
            raise ConfigError("SSL_CTX_set_session_id_context() failed" + ssl_error_text())

    def _set_tickets(self, server) -> None:
        ctx = self._ctx
        if not server.ssl_session_tickets:
            lib.SSL_CTX_set_options(ctx, lib.SSL_OP_NO_TICKET)

        if server.ssl_session_ticket_key:
            where = server.location("ssl_session_ticket_key")
            for path in server.ssl_session_ticket_key:
                key = _read_ticket_key(path, where)
                try:
                    if not lib.mg_ctx_add_ticket_key(ctx, bytes(key), len(key)):
                        raise ConfigError("SSL_CTX_set_ex_data() failed")
                finally:
                    key[:] = b"\0" * len(key)
        # nginx 1.23.2+: without files, automatic keys kept in the shared
        # zone, so that every worker encrypts with the same key; they rotate.
        elif self.session_zone is not None and not lib.mg_ctx_use_zone_ticket_keys(ctx):
            raise ConfigError("SSL_CTX_set_ex_data() failed")

    def _forget_session(self, session) -> None:
        """Forget a session in the builtin and shared caches (after a client
        certificate failed verification, so that it cannot be resumed)."""
        lib.mg_ctx_remove_session(self._ctx, session)



class TLSClientContext(_Context):
    """The context of connections mailgate opens itself as a TLS client (to a backend,
    to an auth server over HTTPS), built as ngx_stream_proxy_module builds its
    ``proxy_ssl_*`` context: protocols, ciphers, an optional client certificate, and
    with ``verify`` the trusted certificates (the system's with ``system_trust`` when
    none are given), the CRL and the depth.

    The verdict on the server's certificate is taken after the handshake
    (``TLSStream.check_server_certificate``), as nginx's ngx_ssl_verify_callback
    accepts every chain during it.
    """

    server_side = False
    _conf_flags = lib.SSL_CONF_FLAG_CLIENT

    def __init__(
        self,
        *,
        protocols: Sequence[str] = ("TLSv1.2", "TLSv1.3"),
        ciphers: str = "DEFAULT",
        verify: bool = False,
        trusted: str | None = None,
        crl: str | None = None,
        verify_depth: int = 1,
        certificate: str | None = None,
        certificate_key: str | None = None,
        passwords: Sequence[bytes] | None = None,
        conf_commands: Sequence[tuple[str, str]] = (),
        conf_prefix: str = "",
        on_message: OnMessage | None = None,
        system_trust: bool = False,
    ):
        super().__init__(conf_prefix, on_message)
        self.verify = verify
        try:
            self._create(protocols)
            self._set_ciphers(ciphers, False)
            if certificate:
                self._use_certificates([(certificate, certificate_key or certificate)], passwords)
            if verify:
                self._trust(trusted, crl, verify_depth, system_trust)
            self._apply_conf_commands(conf_commands)
        finally:
            lib.ERR_clear_error()


#: the chain depth allowed for an https auth server (OpenSSL's default)
AUTH_HTTP_VERIFY_DEPTH = 100


@dataclass(frozen=True)
class ClientContexts:
    """The client-side contexts of one server: to its backends (``proxy_ssl_*``), and
    to its auth server when ``auth_http`` is ``https://`` (``auth_http_ssl_*``)."""

    backend: TLSClientContext
    auth_http: TLSClientContext | None


def build_client_contexts(config, *, on_message: OnMessage | None = None
                          ) -> tuple[ClientContexts, ...]:
    """The client-side contexts of every server of ``config`` (aligned with
    ``config.servers``).  The backend's is built for every server, since an auth
    answer may turn TLS to the backend on (Auth-SSL-Backend); a problem raises
    ``ConfigError``, so ``mailgate -t`` finds it."""
    out = []
    for server in config.servers:
        password_file = server.proxy_ssl_password_file
        backend = TLSClientContext(
            protocols=server.proxy_ssl_protocols, ciphers=server.proxy_ssl_ciphers,
            verify=server.proxy_ssl_verify, trusted=server.proxy_ssl_trusted_certificate,
            crl=server.proxy_ssl_crl, verify_depth=server.proxy_ssl_verify_depth,
            certificate=server.proxy_ssl_certificate,
            certificate_key=server.proxy_ssl_certificate_key,
            passwords=password_file.passwords if password_file else None,
            conf_commands=server.proxy_ssl_conf_command, conf_prefix=config.conf_prefix,
            on_message=on_message)
        target = server.auth_http
        auth = None
        if target is not None and target.tls:
            auth = TLSClientContext(verify=server.auth_http_ssl_verify,
                                    trusted=server.auth_http_ssl_trusted_certificate,
                                    verify_depth=AUTH_HTTP_VERIFY_DEPTH, system_trust=True,
                                    on_message=on_message)
        out.append(ClientContexts(backend, auth))
    return tuple(out)


def build_contexts(
    config, zones: SessionZones | None = None, *, on_message: OnMessage | None = None
) -> tuple[TLSContext | None, ...]:
    """The TLS context of every server of ``config`` that needs one.

    The result is aligned with ``config.servers``: a ``TLSContext`` for each
    server with ``tls_enabled``, None for the others.  ``zones`` must already
    be configured from ``config`` (``SessionZones.configure``); without it a
    registry private to this call is made.  Warnings go to ``on_message``.
    The first problem raises a ``ConfigError``, so ``mailgate -t`` reports
    every TLS error an actual start would meet.
    """
    if zones is None:
        zones = SessionZones()
        zones.configure(config)
    contexts = []
    for server in config.servers:
        if not server.tls_enabled:
            contexts.append(None)
            continue
        shared = server.ssl_session_cache.shared
        zone = zones[shared.name] if shared is not None else None
        contexts.append(TLSContext(server, zone, conf_prefix=config.conf_prefix, on_message=on_message))
    return tuple(contexts)
