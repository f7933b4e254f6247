"""ngx_mail_auth_http_module: where and how authentication requests are sent.

Besides nginx's directives, mailgate's own: ``auth_http https://...`` with
``auth_http_ssl_*`` (TLS to the auth server), and ``auth_http_keepalive*`` (idle
connections kept per worker and reused with HTTP/1.1).
"""

from __future__ import annotations

import socket

from mailgate.config.addresses import AddressError, parse_url
from mailgate.config.model import AuthHttpTarget, MainConfig
from mailgate.config.modules.mail_proxy import check_readable
from mailgate.config.registry import (
    Call,
    Ctx,
    Directive,
    Merge,
    flag_slot,
    keyval_slot,
    msec_slot,
    num_slot,
    str_slot,
)

__all__ = ["DIRECTIVES", "merge"]

MODULE = "ngx_mail_auth_http_module"
MAIL_SERVER = Ctx.MAIL | Ctx.SERVER


def _auth_http(call: Call) -> None:
    url = call.args[0]
    tls = url.startswith("https://")
    if url.startswith("http://"):
        url = url[7:]
    elif tls:
        url = url[8:]
    try:
        parsed = parse_url(url, uri_part=True, default_port=443 if tls else 80)
    except AddressError as exc:
        raise call.error('%s in auth_http "%s"' % (exc, url)) from None
    first = parsed.addresses[0]
    unix = first.family == socket.AF_UNIX
    if tls and unix:
        raise call.error('https is not allowed with a unix socket in auth_http "%s"' % url)
    call.store(
        AuthHttpTarget(
            url=call.args[0],
            family=first.family,
            address=first.host,
            port=first.port,
            uri=parsed.uri or "/",
            host_header="localhost" if unix else parsed.host,
            peer=first.text,
            tls=tls,
        )
    )


DIRECTIVES = (
    Directive("auth_http", MODULE, MAIL_SERVER, (1, 1), _auth_http, merge=Merge.CUSTOM,
              syntax="auth_http URL;", doc_default="— (required)",
              summary="The HTTP authentication server (http://host[:port][/uri] or unix:path[:uri])."),
    Directive("auth_http_header", MODULE, MAIL_SERVER, (2, 2), keyval_slot, default=(),
              syntax="auth_http_header header value;",
              summary="An extra header sent with every authentication request."),
    Directive("auth_http_pass_client_cert", MODULE, MAIL_SERVER, (1, 1), flag_slot, default=False,
              syntax="auth_http_pass_client_cert on | off;", doc_default="off", since="1.7.11",
              summary="Send the client certificate (PEM) in Auth-SSL-Cert."),
    Directive("auth_http_pass_imap_id", MODULE, MAIL_SERVER, (1, 1), flag_slot, default=False,
              syntax="auth_http_pass_imap_id on | off;", doc_default="off", own=True,
              summary="Send the IMAP client's ID parameters, as it sent them, in Auth-IMAP-ID."),
    Directive("auth_http_timeout", MODULE, MAIL_SERVER, (1, 1), msec_slot, default=60.0,
              syntax="auth_http_timeout time;", doc_default="60s",
              summary="Timeout of an authentication request."),
    Directive("auth_http_keepalive", MODULE, MAIL_SERVER, (1, 1), num_slot, default=0, own=True,
              syntax="auth_http_keepalive number;", doc_default="0",
              summary="Idle connections to the auth server kept per worker and reused with "
                      "HTTP/1.1; 0: one HTTP/1.0 connection per request, as nginx."),
    Directive("auth_http_keepalive_timeout", MODULE, MAIL_SERVER, (1, 1), msec_slot,
              default=60.0, own=True, syntax="auth_http_keepalive_timeout time;",
              doc_default="60s", summary="How long a kept connection may stay idle."),
    Directive("auth_http_ssl_verify", MODULE, MAIL_SERVER, (1, 1), flag_slot, default=True,
              own=True, syntax="auth_http_ssl_verify on | off;", doc_default="on",
              summary="Verify the certificate of an https auth server (chain and name)."),
    Directive("auth_http_ssl_trusted_certificate", MODULE, MAIL_SERVER, (1, 1), str_slot,
              default="", merge=Merge.CUSTOM, own=True,
              syntax="auth_http_ssl_trusted_certificate file;", 
              summary="Trusted CAs (PEM) for the https auth server's certificate "
                      "(default: the system's)."),
    Directive("auth_http_ssl_name", MODULE, MAIL_SERVER, (1, 1), str_slot, default="", own=True,
              syntax="auth_http_ssl_name name;",
              summary="Name checked in the https auth server's certificate and sent in SNI "
                      "(default: the URL's host)."),
)


def merge(step, main: MainConfig) -> None:
    """``auth_http`` is required (from the server or mail{}), unless an embedding
    service authenticates with its own callable."""
    target = step.inherited("auth_http", None)
    if target is None and step.loader.require_auth_http:
        raise step.error('no "auth_http" is defined for server')
    step.values["auth_http"] = target
    trusted = step.loader.full_name(step.inherited("auth_http_ssl_trusted_certificate", ""))
    if trusted:
        check_readable(trusted, step.location("auth_http_ssl_trusted_certificate"))
    step.values["auth_http_ssl_trusted_certificate"] = trusted or None
