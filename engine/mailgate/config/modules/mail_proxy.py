"""ngx_mail_proxy_module: backend login and relay settings."""

from __future__ import annotations

import mmap

from mailgate.config.registry import Ctx, Directive, enum_slot, flag_slot, msec_slot, size_slot

__all__ = ["DIRECTIVES"]

MODULE = "ngx_mail_proxy_module"
MAIL_SERVER = Ctx.MAIL | Ctx.SERVER

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
)
