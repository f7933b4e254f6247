"""ngx_mail_proxy_module: backend login and relay settings, and mailgate's TLS to the
backend (``proxy_ssl*``, ``proxy_starttls``: named, defaulted and checked as
ngx_stream_proxy_module's twins, ngx_stream_proxy_set_ssl() in
src/stream/ngx_stream_proxy_module.c)."""

from __future__ import annotations

import mmap
import os

from mailgate.config.errors import ConfigError
from mailgate.config.model import MainConfig
from mailgate.config.modules.mail_ssl import INLINE_PREFIXES, PROTOCOLS, password_file_slot
from mailgate.config.registry import (
    Ctx,
    Directive,
    Merge,
    bitmask_slot,
    enum_slot,
    flag_slot,
    keyval_slot,
    msec_slot,
    num_slot,
    size_slot,
    str_slot,
)
from mailgate.oserror import os_error_text

__all__ = ["DIRECTIVES", "check_readable", "merge"]

MODULE = "ngx_mail_proxy_module"
MAIL_SERVER = Ctx.MAIL | Ctx.SERVER

_FILES = ("proxy_ssl_trusted_certificate", "proxy_ssl_crl", "proxy_ssl_certificate",
          "proxy_ssl_certificate_key")


def _own(name: str, handler, **kw) -> Directive:
    """One of mailgate's own directives of this module (server and mail contexts)."""
    return Directive(name, MODULE, MAIL_SERVER, (1, 1), handler, own=True, **kw)

DIRECTIVES = (
    Directive("proxy", MODULE, MAIL_SERVER, (1, 1), flag_slot, default=False,
              syntax="proxy on | off;", doc_default="off",
              summary="Accepted and ignored, as in nginx (proxying is always on)."),
    Directive("proxy_buffer", MODULE, MAIL_SERVER, (1, 1), size_slot, default=mmap.PAGESIZE,
              syntax="proxy_buffer size;", doc_default="4k",
              summary="Buffer for backend replies and the backend-to-client relay."),
    Directive("proxy_timeout", MODULE, MAIL_SERVER, (1, 1), msec_slot, default=86400.0,
              syntax="proxy_timeout timeout;", doc_default="24h",
              summary="Idle time allowed on the client side while relaying."),
    Directive("proxy_pass_error_message", MODULE, MAIL_SERVER, (1, 1), flag_slot, default=False,
              syntax="proxy_pass_error_message on | off;", doc_default="off",
              summary="Pass the backend's login error to the client."),
    Directive("proxy_protocol", MODULE, MAIL_SERVER, (1, 1), enum_slot(("off", "on", "v2")),
              default="off", syntax="proxy_protocol on | off | v2;", doc_default="off",
              since="1.19.8; v2 1.31.4",
              summary="Send a PROXY protocol header (v1, or v2) to the backend."),
    Directive("proxy_smtp_auth", MODULE, MAIL_SERVER, (1, 1), flag_slot, default=False,
              syntax="proxy_smtp_auth on | off;", doc_default="off", since="1.19.4",
              summary="Log in to the SMTP backend with AUTH PLAIN."),
    Directive("proxy_imap_id", MODULE, MAIL_SERVER, (1, 1), flag_slot, default=False,
              syntax="proxy_imap_id on | off;", doc_default="off", own=True,
              summary="Send ID to the IMAP backend before the login: the client's fields and "
                      "its address (x-originating-ip ...), as Dovecot takes them from "
                      "login_trusted_networks."),
    Directive("proxy_pop3_xclient", MODULE, MAIL_SERVER, (1, 1), flag_slot, default=False,
              syntax="proxy_pop3_xclient on | off;", doc_default="off", own=True,
              summary="Pass the client's address and port to the POP3 backend with XCLIENT "
                      "(Dovecot, from login_trusted_networks)."),
    Directive("xclient", MODULE, MAIL_SERVER, (1, 1), flag_slot, default=True,
              syntax="xclient on | off;", doc_default="on",
              summary="Pass the client's address, name and login to the SMTP backend with XCLIENT."),
    _own("proxy_ssl", flag_slot, default=False, syntax="proxy_ssl on | off;", doc_default="off",
         summary="Implicit TLS to the backend (IMAPS, POP3S, SMTPS)."),
    _own("proxy_starttls", flag_slot, default=False, syntax="proxy_starttls on | off;",
         doc_default="off",
         summary="STARTTLS (IMAP), STLS (POP3) or EHLO and STARTTLS (SMTP) to the backend "
                 "before the login; a backend without it fails the login."),
    _own("proxy_ssl_verify", flag_slot, default=False, syntax="proxy_ssl_verify on | off;",
         doc_default="off", summary="Verify the backend's certificate chain and name."),
    _own("proxy_ssl_trusted_certificate", str_slot, default="", merge=Merge.CUSTOM,
         syntax="proxy_ssl_trusted_certificate file;",
         summary="Trusted CAs (PEM) for verifying the backend's certificate."),
    _own("proxy_ssl_verify_depth", num_slot, default=1, syntax="proxy_ssl_verify_depth number;",
         doc_default="1", summary="Depth of the backend's certificate chain."),
    _own("proxy_ssl_crl", str_slot, default="", merge=Merge.CUSTOM, syntax="proxy_ssl_crl file;",
         summary="Revoked certificates (PEM CRLs) for verifying the backend."),
    _own("proxy_ssl_name", str_slot, default="", syntax="proxy_ssl_name name;",
         summary="Name checked in the backend's certificate and sent in SNI "
                 "(default: Auth-Server of the auth answer)."),
    _own("proxy_ssl_server_name", flag_slot, default=False,
         syntax="proxy_ssl_server_name on | off;", doc_default="off",
         summary="Send the name in SNI to the backend."),
    _own("proxy_ssl_session_reuse", flag_slot, default=True,
         syntax="proxy_ssl_session_reuse on | off;", doc_default="on",
         summary="Resume TLS sessions to the same backend address (per worker)."),
    Directive("proxy_ssl_protocols", MODULE, MAIL_SERVER, (1, None), bitmask_slot(PROTOCOLS),
              default=frozenset({"TLSv1.2", "TLSv1.3"}), own=True,
              syntax="proxy_ssl_protocols [SSLv2] [SSLv3] [TLSv1] [TLSv1.1] [TLSv1.2] [TLSv1.3];",
              doc_default="TLSv1.2 TLSv1.3", summary="Protocol versions offered to the backend."),
    _own("proxy_ssl_ciphers", str_slot, default="HIGH:!aNULL:!MD5",
         syntax="proxy_ssl_ciphers ciphers;", doc_default="HIGH:!aNULL:!MD5",
         summary="TLS 1.2 and older ciphers offered to the backend (OpenSSL format)."),
    Directive("proxy_ssl_conf_command", MODULE, MAIL_SERVER, (2, 2), keyval_slot, default=(),
              own=True, syntax="proxy_ssl_conf_command name value;",
              summary="OpenSSL configuration commands for the backend's context, applied last."),
    _own("proxy_ssl_certificate", str_slot, default="", merge=Merge.CUSTOM,
         syntax="proxy_ssl_certificate file;",
         summary="Client certificate (PEM) presented to the backend."),
    _own("proxy_ssl_certificate_key", str_slot, default="", merge=Merge.CUSTOM,
         syntax="proxy_ssl_certificate_key file;",
         summary="Key of the client certificate presented to the backend."),
    _own("proxy_ssl_password_file", password_file_slot, default=None,
         syntax="proxy_ssl_password_file file;",
         summary="Passphrases for the encrypted client certificate key, one per line."),
)


def check_readable(path: str, location: tuple[str, int] | None) -> None:
    """A file named by a directive must open, else the error is that directive's."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        file, line = location or (None, None)
        raise ConfigError('open() "%s" failed %s' % (path, os_error_text(exc)), file, line) from None


def merge(step, main: MainConfig) -> None:
    """The backend TLS files, as absolute paths that open; nginx's pairings of
    ngx_stream_proxy_set_ssl() (a key for the certificate, CAs for verification)."""
    values = step.values
    if values["proxy_ssl"] and values["proxy_starttls"]:
        file, line = step.location("proxy_starttls")
        raise ConfigError('"proxy_starttls" directive conflicts with "proxy_ssl on"', file, line)
    for name in _FILES:
        raw = step.inherited(name, "")
        inline = name.startswith("proxy_ssl_certificate") and raw.startswith(INLINE_PREFIXES)
        path = raw if inline or not raw else step.loader.full_name(raw)
        if path and not inline:
            check_readable(path, step.location(name))
        values[name] = path or None
    if values["proxy_ssl_certificate"] and not values["proxy_ssl_certificate_key"]:
        file, line = step.location("proxy_ssl_certificate")
        raise ConfigError('no "proxy_ssl_certificate_key" is defined for certificate "%s"'
                          % values["proxy_ssl_certificate"], file, line)
    if values["proxy_ssl_verify"] and not values["proxy_ssl_trusted_certificate"]:
        file, line = step.location("proxy_ssl_verify")
        raise ConfigError("no proxy_ssl_trusted_certificate for proxy_ssl_verify", file, line)
