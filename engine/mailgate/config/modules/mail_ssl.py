"""ngx_mail_ssl_module: every ``ssl_*`` directive, ``starttls`` and the deprecated ``ssl``.

The TLS contexts themselves are built by ``mailgate.tls`` from the merged values; this
module parses, merges and checks what nginx checks while merging (certificate and key
pairs present, a CA for client verification, ticket key file sizes), and reads
``ssl_password_file`` once at load time as nginx does, so a named pipe works.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

from mailgate.config.errors import ConfigError
from mailgate.config.model import (
    MainConfig,
    PasswordFile,
    SessionCacheSetting,
    SessionStoreSetting,
    SharedZone,
)
from mailgate.config.registry import (
    Call,
    Ctx,
    Directive,
    Merge,
    bitmask_slot,
    enum_slot,
    flag_slot,
    keyval_slot,
    num_slot,
    sec_slot,
    str_array_slot,
    str_slot,
)
from mailgate.config.values import atoi, parse_size, parse_time
from mailgate.oserror import os_error_text

__all__ = ["DIRECTIVES", "merge", "INLINE_PREFIXES", "PROTOCOLS", "TICKET_KEY_SIZES",
           "password_file_slot"]

MODULE = "ngx_mail_ssl_module"
MAIL_SERVER = Ctx.MAIL | Ctx.SERVER

PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
VERIFY = ("off", "on", "optional", "optional_no_ca")
# certificate/key values that are not file names
INLINE_PREFIXES = ("data:", "engine:", "store:")
TICKET_KEY_SIZES = (48, 80)
SHARED_CACHE_MIN = 8 * 4096  # nginx refuses shared caches under 8 pages
PASSWORD_LINE_MAX = 4096  # NGX_SSL_PASSWORD_BUFFER_SIZE
PASSWORD_FILE_MAX = 1024 * 1024  # mailgate's bound: 256 lines of the longest kind
STORE_KEY_MIN = 32  # bytes of an ssl_session_store_key file

_PATH_DIRECTIVES = ("ssl_dhparam", "ssl_client_certificate", "ssl_trusted_certificate", "ssl_crl",
                    "ssl_session_store_key")


def _ssl(call: Call) -> None:
    call.warn('the "ssl" directive is deprecated, use the "listen ... ssl" directive instead')
    flag_slot(call)
    if call.level.get("ssl") is True:
        if call.level.get("starttls", "off") != "off":
            raise call.error('"starttls" directive conflicts with "ssl on"')
        call.level.tls_location = (call.file, call.line)


_starttls_value = enum_slot(("off", "on", "only"))


def _starttls(call: Call) -> None:
    _starttls_value(call)
    if call.level.get("starttls") != "off" and call.level.get("ssl") is True:
        raise call.error('"ssl" directive conflicts with "starttls"')
    if not any(listen.ssl for listen in call.level.get("listen", ())):
        call.level.tls_location = (call.file, call.line)


def read_password_file(call: Call, path: str) -> tuple[bytes, ...]:
    """The non-empty lines of the file (one trailing CR stripped), read until EOF.

    Read as ngx_ssl_read_password_file() reads it, a buffer at a time, so that a line
    longer than the buffer (``/dev/zero``) is refused as soon as it is seen; a file or
    pipe that never ends (``/dev/urandom``) is refused after PASSWORD_FILE_MAX bytes,
    where nginx would read on until memory runs out.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise call.error('open() "%s" failed %s' % (path, os_error_text(exc))) from None
    passwords: list[bytes] = []

    def add(line: bytes) -> None:
        if len(line) >= PASSWORD_LINE_MAX:
            raise call.error('too long line in "%s"' % path)
        if line.endswith(b"\r"):
            line = line[:-1]
        if line:
            passwords.append(line)

    pending = b""
    total = 0
    try:
        while True:
            try:
                chunk = os.read(fd, PASSWORD_LINE_MAX)
            except OSError as exc:
                raise call.error('read() "%s" failed %s' % (path, os_error_text(exc))) from None
            if not chunk:
                break
            total += len(chunk)
            if total > PASSWORD_FILE_MAX:
                raise call.error('"%s" is too large: a password file may hold %d bytes'
                                 % (path, PASSWORD_FILE_MAX))
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                add(line)
            if len(pending) >= PASSWORD_LINE_MAX:
                raise call.error('too long line in "%s"' % path)
    finally:
        os.close(fd)
    add(pending)
    return tuple(passwords) or (b"",)


def password_file_slot(call: Call) -> None:
    """A file of passphrases, read now (``ssl_password_file``, ``proxy_ssl_password_file``)."""
    if call.name in call.level:
        raise call.slot_error("is duplicate")
    path = call.loader.full_name(call.args[0])
    call.store(PasswordFile(path, read_password_file(call, path)))


def _session_cache(call: Call) -> None:
    current = call.level.get("ssl_session_cache", None) or {}
    builtin, size, shared = current.get("builtin"), current.get("size"), current.get("shared")
    for word in call.args:
        if word in ("off", "none", "builtin"):
            builtin, size = word, None
        elif word.startswith("builtin:") and len(word) > 8:
            count = atoi(word[8:])
            if count is None:
                raise call.error('invalid session cache "%s"' % word)
            builtin, size = "builtin", count
        elif word.startswith("shared:") and len(word) > 7:
            name, colon, size_text = word[7:].partition(":")
            zone_size = parse_size(size_text) if colon else None
            if not name or zone_size is None:
                raise call.error('invalid session cache "%s"' % word)
            if zone_size < SHARED_CACHE_MIN:
                raise call.error('session cache "%s" is too small' % word)
            declared = call.loader.zones.setdefault(name, zone_size)
            if declared != zone_size:
                raise call.error(
                    'the size %d of shared memory zone "%s" conflicts with already declared size %d'
                    % (zone_size, name, declared)
                )
            shared = SharedZone(name, zone_size)
        else:
            raise call.error('invalid session cache "%s"' % word)
    call.store({"builtin": builtin, "size": size, "shared": shared})


def _without_credentials(url: str) -> str:
    """The URL as an error message may show it: no user or password."""
    return re.sub(r"^(redis://)[^/]*@", r"\1", url)


def _session_store(call: Call) -> None:
    """``redis://[user:password@]host[:port][/db] [prefix=string] [timeout=time]`` or ``off``."""
    if call.name in call.level:
        raise call.slot_error("is duplicate")
    url = call.args[0]
    if url == "off" and len(call.args) == 1:
        call.store(None)
        return
    invalid = call.error('invalid session store "%s"' % _without_credentials(url))
    if not url.startswith("redis://"):
        raise invalid
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise invalid from None
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    db = atoi(path) if path else 0
    if not parts.hostname or parts.query or parts.fragment or db is None or port == 0:
        raise invalid
    setting = {
        "host": parts.hostname, "port": port or 6379, "db": db,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password is not None else None,
    }
    for word in call.args[1:]:
        if word.startswith("prefix="):
            setting["prefix"] = word[7:]
        elif word.startswith("timeout="):
            ms = parse_time(word[8:], seconds=False)
            if not ms:
                raise call.error('invalid timeout "%s"' % word)
            setting["timeout"] = ms / 1000
        else:
            raise call.error('invalid parameter "%s"' % word)
    call.store(SessionStoreSetting(**setting))


def _d(name, nargs, handler, **kw) -> Directive:
    return Directive(name, MODULE, MAIL_SERVER, nargs, handler, **kw)


DIRECTIVES = (
    _d("ssl", (1, 1), _ssl, default=False, syntax="ssl on | off;", doc_default="off",
       since="deprecated 1.15.0, removed 1.25.1",
       summary='Deprecated: accepted with a warning; use "listen ... ssl".'),
    _d("starttls", (1, 1), _starttls, default="off", syntax="starttls on | off | only;",
       doc_default="off", summary="Allow (on) or require (only) STARTTLS / STLS."),
    _d("ssl_certificate", (1, 1), str_array_slot, default=(), merge=Merge.CUSTOM,
       syntax="ssl_certificate file;", since="several 1.11.0; data: 1.15.10",
       summary="PEM certificate and chain (or data:PEM); several for RSA and ECDSA."),
    _d("ssl_certificate_key", (1, 1), str_array_slot, default=(), merge=Merge.CUSTOM,
       syntax="ssl_certificate_key file;", since="engine: 1.7.9; store: 1.29.0",
       summary="Private key for the certificate of the same index: file, data:, "
               "engine:name:id or store:uri."),
    _d("ssl_certificate_compression", (1, 1), flag_slot, default=False,
       syntax="ssl_certificate_compression on | off;", doc_default="off", since="1.29.1",
       summary="Compress the certificate chain (where OpenSSL supports it)."),
    _d("ssl_password_file", (1, 1), password_file_slot, default=None,
       syntax="ssl_password_file file;", since="1.7.3",
       summary="Passphrases for encrypted keys, one per line, tried in order."),
    _d("ssl_dhparam", (1, 1), str_slot, default="", merge=Merge.CUSTOM,
       syntax="ssl_dhparam file;", summary="DH parameters for DHE ciphers."),
    _d("ssl_ecdh_curve", (1, 1), str_slot, default="auto", syntax="ssl_ecdh_curve curve;",
       doc_default="auto", summary="Groups for ECDHE key exchange (colon-separated list)."),
    _d("ssl_protocols", (1, None), bitmask_slot(PROTOCOLS),
       default=frozenset({"TLSv1.2", "TLSv1.3"}),
       syntax="ssl_protocols [SSLv2] [SSLv3] [TLSv1] [TLSv1.1] [TLSv1.2] [TLSv1.3];",
       doc_default="TLSv1.2 TLSv1.3", summary="Enabled protocol versions."),
    _d("ssl_ciphers", (1, 1), str_slot, default="HIGH:!aNULL:!MD5", syntax="ssl_ciphers ciphers;",
       doc_default="HIGH:!aNULL:!MD5", summary="TLS 1.2 and older cipher list (OpenSSL format)."),
    _d("ssl_prefer_server_ciphers", (1, 1), flag_slot, default=False,
       syntax="ssl_prefer_server_ciphers on | off;", doc_default="off",
       summary="The server's cipher order wins."),
    _d("ssl_session_cache", (1, 2), _session_cache, merge=Merge.CUSTOM,
       syntax="ssl_session_cache off | none | [builtin[:size]] [shared:name:size];",
       doc_default="none", summary="Session cache: OpenSSL's per worker, shared between workers, "
                                   "or none."),
    _d("ssl_session_tickets", (1, 1), flag_slot, default=True,
       syntax="ssl_session_tickets on | off;", doc_default="on", since="1.5.9",
       summary="Resumption through session tickets."),
    _d("ssl_session_ticket_key", (1, 1), str_array_slot, default=(), merge=Merge.CUSTOM,
       syntax="ssl_session_ticket_key file;", since="1.5.7",
       summary="48- or 80-byte ticket key files; the first encrypts, all decrypt."),
    _d("ssl_session_timeout", (1, 1), sec_slot, default=300, syntax="ssl_session_timeout time;",
       doc_default="5m", summary="How long a session may be resumed."),
    _d("ssl_session_store", (1, 3), _session_store, default=None,
       syntax="ssl_session_store redis://[user:password@]host[:port][/db] [prefix=string] "
              "[timeout=time] | off;",
       doc_default="off", own=True,
       summary="Share TLS sessions between machines through Redis (encrypted); looked up "
               "when the local cache misses, full handshake after timeout (100ms)."),
    _d("ssl_session_store_key", (1, 1), str_slot, default="", merge=Merge.CUSTOM,
       syntax="ssl_session_store_key file;", own=True,
       summary="At least 32 random bytes the ssl_session_store key is derived from "
               "(default: the first ssl_session_ticket_key file)."),
    _d("ssl_verify_client", (1, 1), enum_slot(VERIFY), default="off",
       syntax="ssl_verify_client on | off | optional | optional_no_ca;", doc_default="off",
       since="1.7.11", summary="Request and verify client certificates."),
    _d("ssl_verify_depth", (1, 1), num_slot, default=1, syntax="ssl_verify_depth number;",
       doc_default="1", since="1.7.11", summary="Depth of client certificate chains."),
    _d("ssl_client_certificate", (1, 1), str_slot, default="", merge=Merge.CUSTOM,
       syntax="ssl_client_certificate file;", since="1.7.11",
       summary="Trusted CAs for client certificates, also sent to clients."),
    _d("ssl_trusted_certificate", (1, 1), str_slot, default="", merge=Merge.CUSTOM,
       syntax="ssl_trusted_certificate file;", since="1.7.11",
       summary="Trusted CAs for client certificates, not sent."),
    _d("ssl_crl", (1, 1), str_slot, default="", merge=Merge.CUSTOM, syntax="ssl_crl file;",
       since="1.7.11", summary="Revoked certificates (PEM CRLs) for client verification."),
    _d("ssl_conf_command", (2, 2), keyval_slot, default=(),
       syntax="ssl_conf_command name value;", since="1.19.4",
       summary="OpenSSL configuration commands, applied last."),
)


def _full_names(step, values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        v if v.startswith(INLINE_PREFIXES) else step.loader.full_name(v) for v in values
    )


def _session_cache_setting(step) -> SessionCacheSetting:
    """The builtin part and the shared zone inherit separately (nginx's rule)."""
    server = step.server.get("ssl_session_cache", None) or {}
    mail = step.mail.get("ssl_session_cache", None) or {}

    def builtin_of(level: dict) -> str | None:
        if level.get("builtin") is None and level.get("shared") is not None:
            return "shared_only"
        return level.get("builtin")

    builtin, size = builtin_of(server), server.get("size")
    if builtin is None:
        builtin, size = builtin_of(mail), mail.get("size")
    shared = server.get("shared") or mail.get("shared")
    return SessionCacheSetting(builtin or "none", size, shared)


def _key_file_size(path: str, file: str | None, line: int | None) -> int:
    """The size of a key file that can be opened, or nginx's ``open()`` error."""
    try:
        size = os.stat(path).st_size
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError('open() "%s" failed %s' % (path, os_error_text(exc)), file, line) from None
    return size


def _check_ticket_keys(step, paths: tuple[str, ...]) -> None:
    file, line = step.loader.mail_end or (None, None)
    for path in paths:
        size = _key_file_size(path, file, line)
        if size not in TICKET_KEY_SIZES:
            raise ConfigError('"%s" must be 48 or 80 bytes' % path, file, line)


def _check_session_store(step, values: dict) -> None:
    """A store needs key material: its own key file, or the ticket key files."""
    if values["ssl_session_store"] is None:
        return
    file, line = step.location("ssl_session_store") or (None, None)
    key = values["ssl_session_store_key"]
    if key is None:
        if not values["ssl_session_ticket_key"]:
            raise ConfigError('no "ssl_session_store_key" or "ssl_session_ticket_key" is defined '
                              'for the "ssl_session_store" directive', file, line)
        return
    if _key_file_size(key, file, line) < STORE_KEY_MIN:
        raise ConfigError('"%s" must be at least %d bytes' % (key, STORE_KEY_MIN), file, line)


def merge(step, main: MainConfig) -> None:
    """Merge the custom ssl values and make nginx's checks for TLS-enabled servers."""
    values = step.values
    values["ssl_session_cache"] = _session_cache_setting(step)
    raw_certificates = step.inherited("ssl_certificate", ())
    raw_keys = step.inherited("ssl_certificate_key", ())
    values["ssl_certificate"] = _full_names(step, raw_certificates)
    values["ssl_certificate_key"] = _full_names(step, raw_keys)
    values["ssl_session_ticket_key"] = _full_names(step, step.inherited("ssl_session_ticket_key", ()))
    for name in _PATH_DIRECTIVES:
        values[name] = step.loader.full_name(step.inherited(name, "")) or None

    listens_ssl = any(listen.ssl for listen in step.server.get("listen"))
    if listens_ssl:
        mode = "listen ... ssl"
    elif values["ssl"]:
        mode = "ssl"
    elif values["starttls"] != "off":
        mode = "starttls"
    else:
        return
    file, line = step.server.tls_location or step.mail.tls_location or (None, None)

    if not raw_certificates:
        raise ConfigError('no "ssl_certificate" is defined for the "%s" directive' % mode, file, line)
    if not raw_keys:
        raise ConfigError(
            'no "ssl_certificate_key" is defined for the "%s" directive' % mode, file, line
        )
    if len(raw_keys) < len(raw_certificates):
        raise ConfigError(
            'no "ssl_certificate_key" is defined for certificate "%s" and the "%s" directive'
            % (raw_certificates[-1], mode),
            file,
            line,
        )
    if (
        values["ssl_verify_client"] not in ("off", "optional_no_ca")
        and not values["ssl_client_certificate"]
        and not values["ssl_trusted_certificate"]
    ):
        raise ConfigError("no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client")
    _check_ticket_keys(step, values["ssl_session_ticket_key"])
    _check_session_store(step, values)
