"""ngx_mail_pop3_module: POP3 authentication methods and capabilities."""

from __future__ import annotations

from mailgate.config.modules._capabilities import capabilities_slot
from mailgate.config.registry import Ctx, Directive, bitmask_slot

__all__ = ["DIRECTIVES", "AUTH_METHODS", "CLIENT_BUFFER"]

MODULE = "ngx_mail_pop3_module"
AUTH_METHODS = ("plain", "apop", "cram-md5", "external")
CLIENT_BUFFER = 128  # POP3 commands are read into a fixed 128-byte buffer

DIRECTIVES = (
    Directive("pop3_capabilities", MODULE, Ctx.MAIL | Ctx.SERVER, (1, None), capabilities_slot,
              default=("TOP", "USER", "UIDL"), syntax="pop3_capabilities extension ...;",
              doc_default="TOP USER UIDL", summary="Capabilities listed by CAPA."),
    Directive("pop3_auth", MODULE, Ctx.MAIL | Ctx.SERVER, (1, None), bitmask_slot(AUTH_METHODS),
              default=frozenset({"plain"}), syntax="pop3_auth method ...;", doc_default="plain",
              since="external 1.11.6",
              summary="Authentication methods: plain (USER/PASS, AUTH PLAIN and LOGIN) apop "
                      "cram-md5 external."),
)
